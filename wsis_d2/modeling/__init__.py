"""Models; importing this registers them into detectron2's registries."""
from . import backbone, boxinst, boxlevelset, boxteacher, condinst, fcos, losses, pointsup, roi_heads, teacher  # noqa: F401,E501
