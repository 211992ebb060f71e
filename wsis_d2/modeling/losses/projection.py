"""BoxInst's projection loss (Tian, Shen, Wang, Chen, "BoxInst", CVPR 2021, Sec. 3.1).

A mask fits its box exactly when its projections onto the x and y axes equal
the box's: L_proj = Dice(max_y m, max_y b) + Dice(max_x m, max_x b), with b the
box filled at the logits' stride.
"""
from typing import Dict

import torch
from torch import nn

from .box_targets import box_coverage_xy
from .dice import dice_loss
from .inputs import MaskLossInputs
from .registry import MASK_LOSS_REGISTRY


def projection_loss(probs: torch.Tensor, boxes: torch.Tensor, stride: int) -> torch.Tensor:
    """
    Args:
        probs: (n, 1, H, W) mask probabilities at ``stride``.
        boxes: (n, 4) XYXY boxes in input pixels.

    Returns:
        (n,) per-instance losses.
    """
    h, w = probs.shape[-2:]
    rows, cols = box_coverage_xy(boxes, h, w, stride)
    # projection of the box mask rows x cols: max over y is cols * max(rows), and vice versa
    proj_x_target = cols * rows.max(dim=1, keepdim=True).values
    proj_y_target = rows * cols.max(dim=1, keepdim=True).values
    proj_x = probs[:, 0].max(dim=1).values  # (n, W): max over y
    proj_y = probs[:, 0].max(dim=2).values  # (n, H): max over x
    return dice_loss(proj_x, proj_x_target) + dice_loss(proj_y, proj_y_target)


@MASK_LOSS_REGISTRY.register()
class ProjectionLoss(nn.Module):
    """Box-supervised: the mask's x/y projections must match the GT box's."""

    LABELS = ("boxes",)

    def __init__(self, cfg):
        super().__init__()
        self.weight = cfg.MODEL.BOXINST.PROJECTION_WEIGHT

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        if mask_logits.shape[0] == 0:
            return {"loss_prj": mask_logits.sum() * 0}
        losses = projection_loss(mask_logits.sigmoid(), inputs.boxes(), inputs.stride)
        return {"loss_prj": self.weight * losses.mean()}
