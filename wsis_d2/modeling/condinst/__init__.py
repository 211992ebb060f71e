from .condinst import CondInst
from .dynamic_mask_head import DynamicMaskHead, dynamic_head_param_count
from .mask_branch import MaskBranch

__all__ = ["CondInst", "DynamicMaskHead", "MaskBranch", "dynamic_head_param_count"]
