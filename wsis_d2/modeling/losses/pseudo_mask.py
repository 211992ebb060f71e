"""BoxTeacher's losses on teacher pseudo masks (Cheng et al., "BoxTeacher", CVPR 2023, Sec. 3.3).

- noise-aware pixel loss: L_pixel = sum_i w_i Dice(m_i, pseudo_i) / #{i : w_i > 0}, each
  instance's dice against its teacher mask binarised at ``MODEL.BOX_TEACHER.MASK_THRESH``
  (as the reference: a soft target would teach the student to stay unsure where the
  teacher is) weighted by the teacher's confidence w_i (0 for GT boxes no teacher
  prediction matched); with ``MODEL.BOX_TEACHER.CONFIDENCE_PIXEL_WEIGHTS`` (not in the
  reference) each pixel also counts by the teacher's certainty |2p - 1|, so pixels the
  teacher is split on are left to the box losses; with
  ``MODEL.BOX_TEACHER.FOREGROUND_PIXEL_WEIGHT`` a < 1 (not in the reference: 1) the pixels
  the teacher calls foreground count a times as much as those it calls background; with
  ``MODEL.BOX_TEACHER.BACKGROUND_COLOR.MODE`` (not in the reference: off) the teacher's
  foreground on cells coloured like the band around the box
  (:mod:`~wsis_d2.modeling.losses.background_color`) is left out ("ignore") or made
  background ("background");
- noise-reduced mask affinity loss (:func:`pseudo_affinity_loss`), on the soft mask.

Both are off before ``MODEL.BOX_TEACHER.START_ITER`` and then ramp up linearly over
``MODEL.BOX_TEACHER.WARMUP_ITERS``.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .dice import dice_loss
from .inputs import MaskLossInputs
from .pairwise import log_same_label_probability, neighbours
from .registry import MASK_LOSS_REGISTRY, linear_ramp


def weighted_dice_loss(probs: torch.Tensor, pseudo: torch.Tensor, weights: torch.Tensor,
                       pixel_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """
    Args:
        probs, pseudo: (n, 1, h, w) student probabilities and pseudo masks; weights: (n,);
        pixel_weights: (n, 1, h, w) per-pixel weights of the dice sums, or None (all 1); an instance
            whose weights are all 0 has loss 1 and no gradient, and still counts in the mean.

    Returns:
        scalar; 0 (connected to ``probs``) when no weight is positive.
    """
    valid = weights > 0
    if not bool(valid.any()):
        return probs.sum() * 0
    return (weights * dice_loss(probs, pseudo, pixel_weights=pixel_weights)).sum() / valid.sum()


@MASK_LOSS_REGISTRY.register()
class PseudoMaskLoss(nn.Module):
    """Teacher-student: weighted dice against the teacher's binarised pseudo masks
    (``MODEL.BOX_TEACHER.MASK_WEIGHT``, ``MASK_THRESH``)."""

    LABELS = ("pseudo_masks",)
    BACKGROUND_COLOR_MODES = ("", "ignore", "background")

    def __init__(self, cfg):
        super().__init__()
        self.weight = cfg.MODEL.BOX_TEACHER.MASK_WEIGHT
        self.warmup_iters = cfg.MODEL.BOX_TEACHER.WARMUP_ITERS
        self.start_iter = cfg.MODEL.BOX_TEACHER.START_ITER
        self.mask_thresh = cfg.MODEL.BOX_TEACHER.MASK_THRESH
        self.confidence_pixel_weights = cfg.MODEL.BOX_TEACHER.CONFIDENCE_PIXEL_WEIGHTS
        self.foreground_pixel_weight = cfg.MODEL.BOX_TEACHER.FOREGROUND_PIXEL_WEIGHT
        if not self.foreground_pixel_weight > 0:
            raise ValueError("MODEL.BOX_TEACHER.FOREGROUND_PIXEL_WEIGHT must be > 0 (0 would drop the teacher's "
                             f"foreground from the dice), got {self.foreground_pixel_weight}")
        background_color = cfg.MODEL.BOX_TEACHER.BACKGROUND_COLOR
        if background_color.MODE not in self.BACKGROUND_COLOR_MODES:
            raise ValueError(f"MODEL.BOX_TEACHER.BACKGROUND_COLOR.MODE must be one of {self.BACKGROUND_COLOR_MODES}, "
                             f"got {background_color.MODE!r}")
        self.background_color = background_color

    def pixel_weights(self, pseudo: torch.Tensor, target: torch.Tensor,
                      ignored: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
        """(n, 1, h, w) soft pseudo masks, their binary targets and (optional) bool cells left out ->
        the dice's pixel weights, or None (all 1)."""
        weights = None
        if self.confidence_pixel_weights:
            # |2p - 1|: 1 where the teacher is sure, 0 where it is split (its boundary, a half-carved hole)
            weights = (2 * pseudo - 1).abs()
        if self.foreground_pixel_weight != 1.0:
            # box supervision over-fills (projections cannot see a filled hole), so a box-trained teacher's
            # background inside the box is the news and its foreground the suspect part
            scale = torch.where(target > 0, self.foreground_pixel_weight, 1.0).to(pseudo)
            weights = scale if weights is None else weights * scale
        if ignored is not None:
            kept = (~ignored).to(pseudo)
            weights = kept if weights is None else weights * kept
        return weights

    def background_color_check(self, target: torch.Tensor,
                               inputs: MaskLossInputs) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(n, 1, h, w) binary targets -> the targets after ``BACKGROUND_COLOR.MODE`` and the cells it leaves
        out (None: none)."""
        config = self.background_color
        if not config.MODE:
            return target, None
        colored = inputs.background_colored(config.BAND, config.SAMPLES, config.THRESH)
        if config.MODE == "background":
            return target * ~colored, None
        return target, colored & (target > 0)

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        ramp = linear_ramp(inputs.iteration, self.warmup_iters, self.start_iter)
        if mask_logits.shape[0] == 0 or ramp == 0.0:
            # no instances, or before START_ITER (no pseudo masks yet): skip the dice and the colour check
            return {"loss_pseudo_mask": mask_logits.sum() * 0}
        pseudo, weights = inputs.pseudo_masks()
        target, ignored = self.background_color_check((pseudo > self.mask_thresh).to(pseudo.dtype), inputs)
        loss = weighted_dice_loss(mask_logits.sigmoid(), target, weights, self.pixel_weights(pseudo, target, ignored))
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
    (``MODEL.BOX_TEACHER.AFFINITY_WEIGHT`` / ``AFFINITY_THRESH``; BoxInst's neighbourhood)."""

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

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        ramp = linear_ramp(inputs.iteration, self.warmup_iters, self.start_iter)
        if mask_logits.shape[0] == 0 or ramp == 0.0:
            # no instances, or before START_ITER (no pseudo masks yet)
            return {"loss_pseudo_affinity": mask_logits.sum() * 0}
        pseudo, weights = inputs.pseudo_masks()
        _, valid = inputs.color_graph(self.size, self.dilation)
        in_box = inputs.box_masks(*mask_logits.shape[-2:])[:, None] >= 0.5
        loss = pseudo_affinity_loss(mask_logits, pseudo, weights, valid, in_box, self.size, self.dilation,
                                    self.thresh)
        return {"loss_pseudo_affinity": self.weight * ramp * loss}
