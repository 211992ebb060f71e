"""detectron2's checkpointer, aware of teacher-student models.

A checkpoint of a teacher-student model holds ``student.*`` and ``teacher.model.*``.
Weights for the student alone (ImageNet backbones, a BoxInst checkpoint) hold
neither prefix: matched by suffix they would fit both copies, so they are loaded
into the student and the teacher starts as its copy.
"""
from typing import List

from detectron2.checkpoint import DetectionCheckpointer

from ..config import ConfigError


def unloaded_weight_names(incompatible) -> List[str]:
    """Names of the model's weights that a load (``_load_model``'s result) left at their initial values:
    those the checkpoint lacks and those whose shape differs. detectron2 only logs them, so a checkpoint
    of another model would otherwise predict with a partly random one."""
    if incompatible is None:
        return []
    # fvcore drops a shape-mismatched weight before loading, so it is listed as missing too
    return list(dict.fromkeys(list(incompatible.missing_keys) + [name for name, *_ in incompatible.incorrect_shapes]))


def unloaded_weights_error(checkpoint: str, unloaded: List[str], model, config_file: str) -> ConfigError:
    """The refusal of a checkpoint that leaves ``unloaded`` weights of ``config_file``'s ``model`` unloaded."""
    return ConfigError(f"{checkpoint}: lacks (or holds another shape of) {len(unloaded)} of the "
                       f"{len(model.state_dict())} weights of {config_file}'s model (e.g. {unloaded[:3]}); "
                       "is it a checkpoint of that config?")


class WSISCheckpointer(DetectionCheckpointer):
    """After a load, ``unloaded_weights`` holds :func:`unloaded_weight_names` of it."""

    unloaded_weights: List[str] = []

    def _load_model(self, checkpoint):
        model = getattr(self.model, "module", self.model)
        student, teacher = getattr(model, "student", None), getattr(model, "teacher", None)
        if student is None or teacher is None or any(k.startswith("teacher.") for k in checkpoint["model"]):
            incompatible = super()._load_model(checkpoint)
        else:
            incompatible = DetectionCheckpointer(student)._load_model(checkpoint)
            teacher.copy_from(student)
        self.unloaded_weights = unloaded_weight_names(incompatible)
        return incompatible
