"""Auto-labelling: boxes (and points) in, COCO masks out (``wsis-d2 autolabel``)."""
from .backends import AUTOLABEL_BACKENDS, BoxBackend, GrabCutBackend, ModelBackend, fill_box, register_backend
from .labeler import autolabel
from .pseudo_views import (SHAPES_PSEUDO_BACKENDS, ensure_pseudo_view, make_pseudo_view, register_real_pseudo,
                           register_shapes_pseudo)

__all__ = ["AUTOLABEL_BACKENDS", "BoxBackend", "GrabCutBackend", "ModelBackend", "SHAPES_PSEUDO_BACKENDS", "autolabel",
           "ensure_pseudo_view", "fill_box", "make_pseudo_view", "register_backend", "register_real_pseudo",
           "register_shapes_pseudo"]
