"""Dice loss on mask probabilities, and the fully-supervised mask loss built on it."""
from typing import Dict

import torch
from torch import nn

from .inputs import MaskLossInputs
from .registry import MASK_LOSS_REGISTRY


def dice_loss(probs: torch.Tensor, targets: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-instance dice loss 1 - 2|p.t| / (|p|^2 + |t|^2) (Milletari et al., V-Net, 2016).

    Args:
        probs, targets: (n, ...) in [0, 1]; targets may be soft.

    Returns:
        (n,) losses.
    """
    p = probs.flatten(1)
    t = targets.flatten(1)
    intersection = (p * t).sum(dim=1)
    union = (p * p).sum(dim=1) + (t * t).sum(dim=1) + eps
    return 1.0 - 2.0 * intersection / union


@MASK_LOSS_REGISTRY.register()
class DiceMaskLoss(nn.Module):
    """Fully-supervised mask loss: dice between sigmoid(logits) and the GT masks (CondInst)."""

    LABELS = ("masks",)

    def __init__(self, cfg=None):
        super().__init__()

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        if mask_logits.shape[0] == 0:
            return {"loss_mask": mask_logits.sum() * 0}
        return {"loss_mask": dice_loss(mask_logits.sigmoid(), inputs.gt_masks()).mean()}
