"""PointWSSIS (Kim et al., CVPR 2023): MaskRefineNet and point-guided pseudo masks."""
from .mask_refine_net import MaskRefineNet, point_heatmaps
from .point_match import match_points_to_masks

__all__ = ["MaskRefineNet", "match_points_to_masks", "point_heatmaps"]
