"""SIM's semantic-aware pseudo labels (Li et al., CVPR 2023, Sec. 3.2-3.3).

Inside each GT box the teacher's instance mask M_I and the class-prototype
semantic map S are mixed, M = (1 - a) M_I + a S (a = 0.5), and cut into three
labels: foreground where M is at least the value at rank n_pos (n_pos = pixels
the teacher itself calls foreground, M_I > 0.5) clamped to [0.7, 0.8];
background where M < 0.4 and everywhere outside the box; the rest is ignored.
Computed on each box's crop, so the cost follows the boxes' area, not the image's.
"""
from typing import Tuple

import torch


def semantic_pseudo_label(instance_probs: torch.Tensor, semantic: torch.Tensor, semantic_weight: float = 0.5,
                          fg_range: Tuple[float, float] = (0.7, 0.8),
                          bg_thresh: float = 0.4) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Args:
        instance_probs: (h, w) the teacher's mask probabilities M_I on one GT box's pixels.
        semantic: (h, w) the semantic map S of the box's class on the same pixels.

    Returns:
        foreground (h, w) and labelled (h, w), bool (foreground implies labelled).
    """
    mixed = (1 - semantic_weight) * instance_probs + semantic_weight * semantic
    n_pos = int((instance_probs > 0.5).sum())
    if n_pos > 0:
        values = mixed.flatten()
        at_rank = float(values.kthvalue(values.numel() - n_pos + 1).values)  # the n_pos-th largest
        thresh = min(max(at_rank, fg_range[0]), fg_range[1])
    else:
        thresh = fg_range[1]
    foreground = mixed >= thresh
    return foreground, foreground | (mixed < bg_thresh)
