"""Dice loss on mask probabilities, and the fully-supervised mask loss built on it."""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from .registry import MASK_LOSS_REGISTRY, MaskLossInputs


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


def gt_masks_at_stride(inputs: MaskLossInputs) -> torch.Tensor:
    """GT masks of the n instances at the logits' stride: (n, 1, H/s, W/s), soft.

    Each image's masks are padded to the batch size and area-averaged over
    s x s blocks, so a target pixel holds the share of its block on the object
    (the block's centre is exactly where the logit sits).
    """
    h, w = inputs.padded_size
    s = inputs.mask_stride
    per_image = []
    for inst in inputs.gt_instances:
        if not inst.has("gt_masks"):
            raise ValueError("DiceMaskLoss needs GT masks, but this data view has none "
                             "(use a weak mask loss, or a dataset view with masks)")
        masks = inst.gt_masks.tensor.float()
        masks = F.pad(masks, (0, w - masks.shape[-1], 0, h - masks.shape[-2]))
        per_image.append(F.avg_pool2d(masks[:, None], kernel_size=s, stride=s) if len(masks) else
                         masks.new_zeros((0, 1, h // s, w // s)))
    offsets = torch.tensor([0] + [len(m) for m in per_image], device=inputs.im_inds.device).cumsum(0)
    return torch.cat(per_image)[offsets[inputs.im_inds] + inputs.gt_inds]


@MASK_LOSS_REGISTRY.register()
class DiceMaskLoss(nn.Module):
    """Fully-supervised mask loss: dice between sigmoid(logits) and the GT masks (CondInst)."""

    def __init__(self, cfg=None, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        if mask_logits.shape[0] == 0:
            return {"loss_mask": mask_logits.sum() * 0}
        targets = gt_masks_at_stride(inputs)
        return {"loss_mask": self.weight * dice_loss(mask_logits.sigmoid(), targets).mean()}
