"""FCOS losses (Tian et al., ICCV 2019): focal classification, GIoU box, centerness BCE.

Normalisation follows the paper's code: classification and centerness by the
number of positives, the box loss (weighted by the centerness targets) by the
sum of those targets; both counts are averaged over processes so that every
GPU/CPU worker uses the same normaliser.
"""
from typing import Dict

import torch
import torch.nn.functional as F
from detectron2.utils import comm
from fvcore.nn import giou_loss, sigmoid_focal_loss_jit

from .targets import centerness_targets


def _mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    world = comm.get_world_size()
    if world > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
        value = value / world
    return value


def ltrb_to_boxes(locations: torch.Tensor, ltrb: torch.Tensor) -> torch.Tensor:
    """(P, 2) locations and (P, 4) distances -> (P, 4) XYXY boxes."""
    return torch.cat([locations - ltrb[:, :2], locations + ltrb[:, 2:]], dim=1)


def fcos_losses(logits: torch.Tensor, box_reg: torch.Tensor, ctrness: torch.Tensor,
                labels: torch.Tensor, reg_targets: torch.Tensor, num_classes: int,
                alpha: float = 0.25, gamma: float = 2.0) -> Dict[str, torch.Tensor]:
    """
    Args:
        logits: (M, K) class logits of all M locations of the batch.
        box_reg: (M, 4) predicted (l, t, r, b) in stride units.
        ctrness: (M,) centerness logits.
        labels: (M,) class targets, ``num_classes`` = background.
        reg_targets: (M, 4) (l, t, r, b) targets in stride units.

    Returns:
        ``loss_fcos_cls``, ``loss_fcos_loc``, ``loss_fcos_ctr``.
    """
    pos = torch.nonzero(labels != num_classes).squeeze(1)
    num_pos = _mean_over_processes(torch.tensor(float(pos.numel()), device=logits.device))
    normaliser = num_pos.clamp(min=1.0)

    class_target = torch.zeros_like(logits)
    class_target[pos, labels[pos]] = 1
    loss_cls = sigmoid_focal_loss_jit(logits, class_target, alpha=alpha, gamma=gamma, reduction="sum") / normaliser

    ctr_target = centerness_targets(reg_targets[pos])
    # every process must join this all-reduce, also one whose images gave no positive
    ctr_sum = _mean_over_processes(ctr_target.sum().detach()).clamp(min=1e-6)
    if pos.numel() == 0:
        # keep every output in the graph so that DDP sees gradients for all parameters
        zero = box_reg.sum() * 0 + ctrness.sum() * 0
        return {"loss_fcos_cls": loss_cls, "loss_fcos_loc": zero, "loss_fcos_ctr": zero}

    # GIoU is invariant to the shared origin: use (0, 0) for every location.
    origin = torch.zeros((pos.numel(), 2), device=logits.device)
    giou = giou_loss(ltrb_to_boxes(origin, box_reg[pos]), ltrb_to_boxes(origin, reg_targets[pos]), reduction="none")
    loss_loc = (giou * ctr_target).sum() / ctr_sum
    loss_ctr = F.binary_cross_entropy_with_logits(ctrness[pos], ctr_target, reduction="sum") / normaliser
    return {"loss_fcos_cls": loss_cls, "loss_fcos_loc": loss_loc, "loss_fcos_ctr": loss_ctr}
