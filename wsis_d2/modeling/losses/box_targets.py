"""Box-derived targets at the mask-logit stride, for the box-supervised losses."""
import torch


def _interval_coverage(lo: torch.Tensor, hi: torch.Tensor, length: int, stride: int) -> torch.Tensor:
    """(n,) intervals -> (n, length): share of each stride-wide cell [s*j, s*(j+1)) they cover."""
    starts = torch.arange(length, device=lo.device, dtype=lo.dtype) * stride
    overlap = torch.minimum(hi[:, None], starts + stride) - torch.maximum(lo[:, None], starts)
    return overlap.clamp(min=0) / stride


def box_coverage_xy(boxes: torch.Tensor, height: int, width: int, stride: int):
    """Separable box masks at ``stride``: (n, height) rows and (n, width) columns in [0, 1].

    The box mask is their outer product: each cell holds the share of its area
    inside the box, so a box smaller than a cell still leaves a (small) target
    instead of vanishing.
    """
    rows = _interval_coverage(boxes[:, 1], boxes[:, 3], height, stride)
    cols = _interval_coverage(boxes[:, 0], boxes[:, 2], width, stride)
    return rows, cols


def box_masks(boxes: torch.Tensor, height: int, width: int, stride: int) -> torch.Tensor:
    """(n, 4) XYXY boxes -> (n, height, width) area-coverage masks at ``stride``."""
    rows, cols = box_coverage_xy(boxes, height, width, stride)
    return rows[:, :, None] * cols[:, None, :]
