"""SIM's semantic-aware pseudo labels (Li et al., CVPR 2023, Sec. 3.2-3.3).

Inside each GT box the teacher's instance mask M_I and the class-prototype
semantic map S are mixed, M = (1 - a) M_I + a S (a = 0.5), and cut into three
labels: foreground where M is at least the value at rank n_pos (n_pos = pixels
the teacher itself calls foreground, M_I > 0.5) clamped to [0.7, 0.8];
background where M < 0.4 and everywhere outside the box; the rest is ignored.
"""
from typing import Tuple

import torch


def semantic_pseudo_labels(instance_probs: torch.Tensor, semantic: torch.Tensor, in_box: torch.Tensor,
                           semantic_weight: float = 0.5, fg_range: Tuple[float, float] = (0.7, 0.8),
                           bg_thresh: float = 0.4) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Args:
        instance_probs: (G, H, W) the teacher's mask probabilities M_I for each GT box.
        semantic: (G, H, W) the semantic map S of each box's class.
        in_box: (G, H, W) bool, pixel inside the GT box.

    Returns:
        foreground (G, H, W) and labelled (G, H, W), both float in {0, 1} (foreground implies labelled).
    """
    num, h, w = instance_probs.shape
    mixed = ((1 - semantic_weight) * instance_probs + semantic_weight * semantic) * in_box
    if num == 0:
        return mixed.clone(), mixed.clone()
    n_pos = ((instance_probs > 0.5) & in_box).flatten(1).sum(1)
    ranked = mixed.flatten(1).sort(dim=1, descending=True).values
    at_rank = ranked.gather(1, (n_pos - 1).clamp(min=0)[:, None])[:, 0]
    thresh = torch.where(n_pos > 0, at_rank, torch.full_like(at_rank, fg_range[1])).clamp(*fg_range)
    foreground = (mixed >= thresh[:, None, None]) & in_box
    background = (mixed < bg_thresh) | ~in_box
    return foreground.float(), (foreground | background).float()
