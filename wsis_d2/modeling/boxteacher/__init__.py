from .boxteacher import BoxTeacher, BoxTeacherStudent

__all__ = ["BoxTeacher", "BoxTeacherStudent"]
