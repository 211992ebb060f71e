"""SIM's loss on its semantic-aware pseudo labels (Li et al., CVPR 2023, Sec. 3.3-3.4).

- every pseudo-labelled instance: sigmoid focal loss (alpha 0.25, gamma 2) over the
  cells its pseudo label speaks about (foreground or background, not ignored),
  averaged over those cells, x ``MODEL.SIM.LOSS_WEIGHT`` (0.3);
- pasted instances (fully labelled by their mask): also dice, x ``MODEL.SIM.PASTE_DICE_WEIGHT``.

Both ramp up linearly over ``MODEL.SIM.RAMP_ITERS`` (the reference: min(iter / 270k, 1)).
"""
from typing import Dict

import torch
from fvcore.nn import sigmoid_focal_loss
from torch import nn

from ..losses.dice import dice_loss
from ..losses.inputs import MaskLossInputs
from ..losses.pseudo_mask import pseudo_masks
from ..losses.registry import MASK_LOSS_REGISTRY, linear_ramp


def semantic_pseudo_mask_loss(logits: torch.Tensor, pseudo: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor,
                              alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """
    Args:
        logits: (n, 1, h, w); pseudo: (n, 1, h, w) foreground share of each cell; valid: (n, 1, h, w)
            labelled share; weights: (n,) 0 = no pseudo label.

    Returns:
        mean focal loss over the labelled cells (>= half labelled) of the weighted instances;
        0, connected to ``logits``, when there are none. A cell's target: its labelled part is
        mostly foreground.
    """
    labelled = (valid >= 0.5) & (weights > 0)[:, None, None, None]
    if not bool(labelled.any()):
        return logits.sum() * 0
    target = (pseudo >= 0.5 * valid).float()
    focal = sigmoid_focal_loss(logits, target, alpha=alpha, gamma=gamma, reduction="none")
    return (focal * labelled).sum() / labelled.sum()


def pseudo_valid(inputs: MaskLossInputs) -> torch.Tensor:
    """(n, 1, h, w) share of each cell the pseudo labels speak about (SIM ignores uncertain pixels: the GT
    ``Instances`` field ``gt_pseudo_valid``); all ones when the teacher-student model labels every pixel
    (no image holds the field)."""
    return inputs.instance_masks("gt_pseudo_valid", "gt_pseudo_valid must be set on every image or none", fill=1.0)


@MASK_LOSS_REGISTRY.register()
class SemanticPseudoMaskLoss(nn.Module):
    """SIM: focal loss on semantic-aware pseudo labels, + dice on pasted objects."""

    LABELS = ("pseudo_masks",)

    def __init__(self, cfg):
        super().__init__()
        s = cfg.MODEL.SIM
        self.weight = s.LOSS_WEIGHT
        self.paste_dice_weight = s.PASTE_DICE_WEIGHT
        self.ramp_iters = s.RAMP_ITERS
        self.alpha = s.FOCAL_ALPHA
        self.gamma = s.FOCAL_GAMMA

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        zero = mask_logits.sum() * 0
        if mask_logits.shape[0] == 0:
            return {"loss_sim_pseudo": zero, "loss_sim_paste": zero}
        pseudo, weights = pseudo_masks(inputs)
        valid = pseudo_valid(inputs)
        ramp = linear_ramp(inputs.iteration, self.ramp_iters)
        focal = semantic_pseudo_mask_loss(mask_logits, pseudo, valid, weights, self.alpha, self.gamma)
        pasted = inputs.instance_values("gt_pasted") > 0
        paste = dice_loss(mask_logits[pasted].sigmoid(), pseudo[pasted]).mean() if bool(pasted.any()) else zero
        return {"loss_sim_pseudo": self.weight * ramp * focal,
                "loss_sim_paste": self.paste_dice_weight * ramp * paste}
