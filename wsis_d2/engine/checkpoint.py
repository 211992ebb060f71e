"""detectron2's checkpointer, aware of teacher-student models.

A checkpoint of a teacher-student model holds ``student.*`` and ``teacher.model.*``.
Weights for the student alone (ImageNet backbones, a BoxInst checkpoint) hold
neither prefix: matched by suffix they would fit both copies, so they are loaded
into the student and the teacher starts as its copy.
"""
from detectron2.checkpoint import DetectionCheckpointer


class WSISCheckpointer(DetectionCheckpointer):
    def _load_model(self, checkpoint):
        model = getattr(self.model, "module", self.model)
        student, teacher = getattr(model, "student", None), getattr(model, "teacher", None)
        if student is None or teacher is None or any(k.startswith("teacher.") for k in checkpoint["model"]):
            return super()._load_model(checkpoint)
        incompatible = DetectionCheckpointer(student)._load_model(checkpoint)
        teacher.copy_from(student)
        return incompatible
