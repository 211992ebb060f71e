"""Models; importing this registers them into detectron2's registries."""
from . import (  # noqa: F401
    backbone, boxinst, boxlevelset, boxteacher, condinst, fcos, losses, pointsup, pointwssis, roi_heads, sim,
    teacher,
)
