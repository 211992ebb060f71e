"""Models; importing this registers them into detectron2's registries."""
from . import backbone, boxinst, boxlevelset, condinst, fcos, losses, pointsup, roi_heads  # noqa: F401
