"""Dice loss on mask probabilities, and the fully-supervised mask loss built on it."""
from typing import Dict, Optional

import torch
from torch import nn

from .inputs import MaskLossInputs
from .registry import MASK_LOSS_REGISTRY


def dice_loss(probs: torch.Tensor, targets: torch.Tensor, *, pixel_weights: Optional[torch.Tensor] = None,
              eps: float = 1e-5) -> torch.Tensor:
    """Per-instance dice loss 1 - 2|p.t| / (|p|^2 + |t|^2) (Milletari et al., V-Net, 2016); with
    ``pixel_weights`` w, 1 - 2 sum(w p t) / (sum(w p^2) + sum(w t^2)) (weight 0: the pixel does not count).

    Args:
        probs, targets: (n, ...) in [0, 1]; targets may be soft. pixel_weights: same shape, >= 0.

    Returns:
        (n,) losses.
    """
    p = probs.flatten(1)
    t = targets.flatten(1)
    # unweighted (every CondInst / projection step) allocates no weight map
    wp, wt = (p, t) if pixel_weights is None else (pixel_weights.flatten(1) * p, pixel_weights.flatten(1) * t)
    intersection = (wp * t).sum(dim=1)
    union = (wp * p).sum(dim=1) + (wt * t).sum(dim=1) + eps
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
