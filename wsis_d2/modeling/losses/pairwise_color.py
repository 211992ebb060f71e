"""BoxInst's colour-pairwise loss (Tian, Shen, Wang, Chen, "BoxInst", CVPR 2021, Sec. 3.2).

Neighbouring pixels of similar colour probably share a label. For every edge
whose centre pixel lies in the GT box and whose LAB colour similarity is at
least tau, the loss is -log P(same label) = -log(m_i m_j + (1 - m_i)(1 - m_j)),
averaged over those edges of all instances and ramped up linearly over the
first ``WARMUP_ITERS`` iterations. The colour graph comes from the inputs'
frame (computed once per image for full-image logits), without the bottom
``BOTTOM_PIXELS_REMOVED`` rows of the original image. A subclass may count
other edges (:meth:`PairwiseColorLoss.similar_edges`; SIM's weighs colour by
the teacher's features).
"""
from typing import Dict

import torch
from torch import nn

from .inputs import MaskLossInputs
from .pairwise import log_same_label_probability
from .registry import MASK_LOSS_REGISTRY, linear_ramp


def pairwise_color_loss(logits: torch.Tensor, similar_edges: torch.Tensor, in_box: torch.Tensor,
                        size: int = 3, dilation: int = 2) -> torch.Tensor:
    """
    Args:
        logits: (n, 1, H, W) mask logits of n instances.
        similar_edges: (n, K, H, W) bool, valid edges of similarity >= tau.
        in_box: (n, 1, H, W) bool, centre pixel inside the instance's box.

    Returns:
        scalar: mean -log P(same label) over the counted edges (0 if none).
    """
    weights = (similar_edges & in_box).float()
    log_same = log_same_label_probability(logits, size, dilation)
    return -(log_same * weights).sum() / weights.sum().clamp(min=1.0)


@MASK_LOSS_REGISTRY.register()
class PairwiseColorLoss(nn.Module):
    """Box-supervised: similar-coloured neighbours inside the box share a label."""

    LABELS = ("boxes",)

    def __init__(self, cfg):
        super().__init__()
        p = cfg.MODEL.BOXINST.PAIRWISE
        self.size = p.SIZE
        self.dilation = p.DILATION
        self.edge_thresh = p.COLOR_THRESH
        self.warmup_iters = p.WARMUP_ITERS
        self.weight = p.WEIGHT
        self.bottom_pixels_removed = cfg.MODEL.BOXINST.BOTTOM_PIXELS_REMOVED

    def similar_edges(self, inputs: MaskLossInputs) -> torch.Tensor:
        """(n, K, H, W) bool: the edges this term counts, those of colour similarity >= ``edge_thresh``."""
        return inputs.similar_edges(self.size, self.dilation, self.edge_thresh, self.bottom_pixels_removed)

    def warmup_factor(self, iteration: int) -> float:
        return linear_ramp(iteration, self.warmup_iters)

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        if mask_logits.shape[0] == 0:
            return {"loss_pairwise": mask_logits.sum() * 0}
        logits, in_box = inputs.graph_logits(mask_logits)
        edges = self.similar_edges(inputs)
        loss = pairwise_color_loss(logits, edges, in_box, self.size, self.dilation)
        return {"loss_pairwise": self.weight * self.warmup_factor(inputs.iteration) * loss}
