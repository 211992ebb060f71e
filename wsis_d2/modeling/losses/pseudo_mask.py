"""BoxTeacher's losses on teacher pseudo masks (Cheng et al., "BoxTeacher", CVPR 2023, Sec. 3.3).

- noise-aware pixel loss: L_pixel = sum_i w_i Dice(m_i, pseudo_i) / #{i : w_i > 0}, each
  instance's dice against its teacher mask binarised at ``MODEL.TEACHER.MASK_THRESH``
  (as the reference: a soft target would teach the student to stay unsure where the
  teacher is) weighted by the teacher's confidence w_i (0 for GT boxes no teacher
  prediction matched);
- noise-reduced mask affinity loss (:func:`pseudo_affinity_loss`), on the soft mask.

Both are off before ``MODEL.BOX_TEACHER.START_ITER`` and then ramp up linearly over
``MODEL.BOX_TEACHER.WARMUP_ITERS``.
"""
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .dice import dice_loss
from .inputs import MaskLossInputs
from .pairwise import log_same_label_probability, neighbours
from .registry import MASK_LOSS_REGISTRY, linear_ramp


def pseudo_masks(inputs: MaskLossInputs) -> Tuple[torch.Tensor, torch.Tensor]:
    """A teacher-student model's pseudo masks of the instances at the logits' resolution (n, 1, h, w) in
    [0, 1] and their weights (n,) (0: no teacher prediction claimed the box): the GT ``Instances`` fields
    ``gt_pseudo_masks`` / ``gt_pseudo_weights`` that the model sets for its student."""
    masks = inputs.instance_masks("gt_pseudo_masks", "this mask loss needs teacher pseudo masks, but the data has "
                                                     "none (a teacher-student model such as BoxTeacher sets them)")
    return masks, inputs.instance_values("gt_pseudo_weights")


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
    """Teacher-student: weighted dice against the teacher's binarised pseudo masks
    (``MODEL.BOX_TEACHER.MASK_WEIGHT``, ``MODEL.TEACHER.MASK_THRESH``)."""

    LABELS = ("pseudo_masks",)

    def __init__(self, cfg):
        super().__init__()
        self.weight = cfg.MODEL.BOX_TEACHER.MASK_WEIGHT
        self.warmup_iters = cfg.MODEL.BOX_TEACHER.WARMUP_ITERS
        self.start_iter = cfg.MODEL.BOX_TEACHER.START_ITER
        self.mask_thresh = cfg.MODEL.TEACHER.MASK_THRESH

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        ramp = linear_ramp(inputs.iteration, self.warmup_iters, self.start_iter)
        if mask_logits.shape[0] == 0 or ramp == 0.0:
            # no instances, or before START_ITER (no pseudo masks yet): skip the dice
            return {"loss_pseudo_mask": mask_logits.sum() * 0}
        pseudo, weights = pseudo_masks(inputs)
        loss = weighted_dice_loss(mask_logits.sigmoid(), (pseudo > self.mask_thresh).to(pseudo.dtype), weights)
        return {"loss_pseudo_mask": self.weight * ramp * loss}


def pseudo_affinity_loss(logits: torch.Tensor, pseudo: torch.Tensor, weights: torch.Tensor, valid: torch.Tensor,
                         in_box: torch.Tensor, size: int = 3, dilation: int = 2,
                         thresh: float = 0.5) -> torch.Tensor:
    """BoxTeacher's noise-reduced mask affinity term.

    The pseudo mask is smoothed with a 3 x 3 mean; an edge counts when its centre
    is in the box, both ends are valid pixels and the smoothed pseudo mask's
    affinity p_i p_j + (1 - p_i)(1 - p_j) is at least ``thresh``; there the
    student pays -log P(same label). Per instance the mean over its edges,
    then sum_i w_i L_i / #{i : w_i > 0}.

    Args:
        logits, pseudo: (n, 1, h, w); weights: (n,); valid: (n, K, h, w) bool edge validity;
        in_box: (n, 1, h, w) bool.
    """
    use = weights > 0
    if not bool(use.any()):
        return logits.sum() * 0
    smooth = F.avg_pool2d(pseudo, kernel_size=3, stride=1, padding=1, count_include_pad=False)
    neighbour = neighbours(smooth, size, dilation)[:, 0]
    affinity = smooth * neighbour + (1 - smooth) * (1 - neighbour)
    edges = ((affinity >= thresh) & valid & in_box).float()
    per_instance = -(log_same_label_probability(logits, size, dilation) * edges).flatten(1).sum(1)
    per_instance = per_instance / edges.flatten(1).sum(1).clamp(min=1.0)
    return (weights * per_instance).sum() / use.sum()


@MASK_LOSS_REGISTRY.register()
class PseudoAffinityLoss(nn.Module):
    """Teacher-student: neighbours the (smoothed) pseudo mask agrees on share a label
    (``MODEL.BOX_TEACHER.AFFINITY_WEIGHT`` / ``AFFINITY_THRESH``; BoxInst's neighbourhood and colour graph
    validity, ``MODEL.BOXINST.PAIRWISE`` and ``BOTTOM_PIXELS_REMOVED``)."""

    LABELS = ("pseudo_masks",)

    def __init__(self, cfg):
        super().__init__()
        b = cfg.MODEL.BOX_TEACHER
        self.weight = b.AFFINITY_WEIGHT
        self.thresh = b.AFFINITY_THRESH
        self.warmup_iters = b.WARMUP_ITERS
        self.start_iter = b.START_ITER
        self.size = cfg.MODEL.BOXINST.PAIRWISE.SIZE
        self.dilation = cfg.MODEL.BOXINST.PAIRWISE.DILATION
        self.bottom_pixels_removed = cfg.MODEL.BOXINST.BOTTOM_PIXELS_REMOVED

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        ramp = linear_ramp(inputs.iteration, self.warmup_iters, self.start_iter)
        if mask_logits.shape[0] == 0 or ramp == 0.0:
            # no instances, or before START_ITER (no pseudo masks yet)
            return {"loss_pseudo_affinity": mask_logits.sum() * 0}
        pseudo, weights = pseudo_masks(inputs)
        _, valid = inputs.color_graph(self.size, self.dilation, self.bottom_pixels_removed)
        in_box = inputs.box_masks(*mask_logits.shape[-2:])[:, None] >= 0.5
        loss = pseudo_affinity_loss(mask_logits, pseudo, weights, valid, in_box, self.size, self.dilation,
                                    self.thresh)
        return {"loss_pseudo_affinity": self.weight * ramp * loss}
