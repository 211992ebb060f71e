from .fcos import FCOS, FCOSPositives
from .head import FCOSHead
from .targets import assign_fcos_targets, compute_locations

__all__ = ["FCOS", "FCOSHead", "FCOSPositives", "assign_fcos_targets", "compute_locations"]
