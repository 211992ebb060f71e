"""PointSup's point loss (Cheng, Parkhi, Kirillov, "Pointly-Supervised Instance Segmentation", CVPR 2022).

Each object has a few points labelled on (1) or off (0) the object. The mask
logits are read at those points by bilinear interpolation, as PointRend's
``point_sample`` (``grid_sample`` with ``align_corners=False``, so a logit sits
at the centre of the cell it covers), and trained with binary cross-entropy.
Points the frame cannot see (label -1: left the image, outside the RoI,
padding) do not count. The same function serves Mask R-CNN's per-RoI logits
and CondInst's full-image logits; :meth:`MaskLossInputs.points` maps the points
into each frame.
"""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from .inputs import MaskLossInputs
from .registry import MASK_LOSS_REGISTRY


def sample_at_points(maps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear values of ``maps`` at ``coords``.

    Args:
        maps: (n, C, h, w).
        coords: (n, P, 2) (x, y) normalised to the maps' extent: 0 is the left/top
            edge of the first cell, 1 the right/bottom edge of the last.

    Returns:
        (n, C, P); points outside the extent read zero padding.
    """
    grid = (2.0 * coords - 1.0).unsqueeze(2)  # (n, P, 1, 2) in grid_sample's [-1, 1]
    return F.grid_sample(maps, grid, mode="bilinear", align_corners=False).squeeze(3)


def point_loss(mask_logits: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the labelled points of every instance.

    Args:
        mask_logits: (n, 1, h, w).
        coords: (n, P, 2) normalised as in :func:`sample_at_points`.
        labels: (n, P) 1 = on the object, 0 = off, -1 = ignored.

    Returns:
        scalar; 0 (still connected to the logits) when no point counts.
    """
    labelled = labels >= 0
    if mask_logits.shape[0] == 0 or not bool(labelled.any()):
        return mask_logits.sum() * 0
    logits = sample_at_points(mask_logits, coords)[:, 0]
    return F.binary_cross_entropy_with_logits(logits[labelled], labels[labelled].to(logits.dtype))


@MASK_LOSS_REGISTRY.register()
class PointLoss(nn.Module):
    """Point-supervised: BCE of the mask logits at the labelled points (``MODEL.POINT_SUP.WEIGHT``)."""

    LABELS = ("points",)

    def __init__(self, cfg):
        super().__init__()
        self.weight = cfg.MODEL.POINT_SUP.WEIGHT

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        if mask_logits.shape[0] == 0:
            return {"loss_point": mask_logits.sum() * 0}
        coords, labels = inputs.points()
        return {"loss_point": self.weight * point_loss(mask_logits, coords, labels)}
