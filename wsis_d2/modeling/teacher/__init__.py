"""Teacher-student machinery shared by BoxTeacher, SIM and PointWSSIS: EMA teacher, pseudo masks."""
from .ema import EMAUpdateHook, MeanTeacher, ema_momentum
from .pseudo_labels import assign_pseudo_masks, mask_aware_scores
from .teacher_student import TeacherStudent

__all__ = ["EMAUpdateHook", "MeanTeacher", "assign_pseudo_masks", "ema_momentum", "mask_aware_scores",
           "TeacherStudent"]
