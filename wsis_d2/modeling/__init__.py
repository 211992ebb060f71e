"""Models; importing this registers them into detectron2's registries."""
from . import backbone, condinst, fcos, losses  # noqa: F401
