"""Auto-labelling: boxes (and points) in, COCO masks out (``wsis-d2 autolabel``)."""
from .backends import AUTOLABEL_BACKENDS, BoxBackend, GrabCutBackend, ModelBackend, fill_box, register_backend
from .labeler import autolabel

__all__ = ["AUTOLABEL_BACKENDS", "BoxBackend", "GrabCutBackend", "ModelBackend", "autolabel", "fill_box",
           "register_backend"]
