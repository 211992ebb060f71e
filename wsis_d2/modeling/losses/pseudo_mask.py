"""BoxTeacher's noise-aware pixel loss on teacher pseudo masks (Cheng et al., "BoxTeacher", CVPR 2023, Sec. 3.3).

L_pixel = sum_i w_i Dice(m_i, pseudo_i) / #{i : w_i > 0}: each instance's dice
against its teacher mask, weighted by the teacher's confidence w_i (0 for GT
boxes no teacher prediction matched), ramped up linearly over ``WARMUP_ITERS``.
"""
from typing import Dict

import torch
from torch import nn

from .dice import dice_loss
from .inputs import MaskLossInputs
from .registry import MASK_LOSS_REGISTRY


def weighted_dice_loss(probs: torch.Tensor, pseudo: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """
    Args:
        probs, pseudo: (n, 1, h, w) student probabilities and pseudo masks; weights: (n,).

    Returns:
        scalar; 0 (connected to ``probs``) when no weight is positive.
    """
    valid = weights > 0
    if not bool(valid.any()):
        return probs.sum() * 0
    return (weights * dice_loss(probs, pseudo)).sum() / valid.sum()


@MASK_LOSS_REGISTRY.register()
class PseudoMaskLoss(nn.Module):
    """Teacher-student: weighted dice against the teacher's pseudo masks (``MODEL.BOX_TEACHER.MASK_WEIGHT``)."""

    LABELS = ("pseudo_masks",)

    def __init__(self, cfg):
        super().__init__()
        self.weight = cfg.MODEL.BOX_TEACHER.MASK_WEIGHT
        self.warmup_iters = cfg.MODEL.BOX_TEACHER.WARMUP_ITERS

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        if mask_logits.shape[0] == 0:
            return {"loss_pseudo_mask": mask_logits.sum() * 0}
        pseudo, weights = inputs.pseudo_masks()
        ramp = min(inputs.iteration / float(self.warmup_iters), 1.0) if self.warmup_iters > 0 else 1.0
        loss = weighted_dice_loss(mask_logits.sigmoid(), pseudo, weights)
        return {"loss_pseudo_mask": self.weight * ramp * loss}
