"""Mixed supervision per object: each mask loss trains the instances that carry its labels.

With ``MODEL.MIXED_SUPERVISION`` an object may have a full mask, a box alone, or a box and
points (the data mapper marks each GT instance with ``gt_has_mask`` / ``gt_has_points``). Which
instances a loss trains follows from the labels it declares (``LABELS``):

- a loss reading ``"masks"`` (e.g. ``DiceMaskLoss``): the instances with a mask;
- a loss reading ``"points"`` (``PointLoss``): the instances with points;
- a loss reading boxes only (``ProjectionLoss``, ``PairwiseColorLoss``, BoxLevelSet's, SIM's feature
  pairwise): the instances *without* a mask (box alone, or box + points): a drawn mask says all a box
  says and more;
- a loss reading a teacher's ``"pseudo_masks"``: every instance (a teacher-student model puts the real
  mask in place of its pseudo mask where there is one).

Each loss runs on its instances' logits alone (a subset of the frame, :meth:`MaskLossInputs.subset`),
so it normalises over the instances it sees and no gradient reaches the others; with none, it
returns its zero (connected to the logits, no NaN). When a loss's subset is every instance the
loss is called unchanged, so an all-box batch gets exactly BoxInst's losses and an all-mask
batch CondInst's.
"""
from typing import Dict, Iterable, Optional

import torch
from detectron2.modeling.roi_heads import ROI_MASK_HEAD_REGISTRY
from torch import nn

from .inputs import MaskLossInputs
from .registry import MASK_LOSS_REGISTRY

# the labels that make a loss box-supervised (it trains the objects that have no mask)
BOX_LABELS = frozenset({"boxes", "teacher_features"})


def supervised_instances(labels: Iterable[str], inputs: MaskLossInputs) -> Optional[torch.Tensor]:
    """(n,) bool: the instances a loss reading ``labels`` trains; None: all of them."""
    labels = set(labels)
    if "pseudo_masks" in labels:
        return None
    if "masks" in labels:
        return inputs.has_masks()
    if "points" in labels:
        return inputs.has_points()
    if labels <= BOX_LABELS:
        return ~inputs.has_masks()
    return None


def kinds_trained(labels: Iterable[str]) -> set:
    """The kinds of object ("mask", "points", "box") a loss reading ``labels`` trains under mixed
    supervision (a box loss also trains objects with points: they have a box)."""
    labels = set(labels)
    if "pseudo_masks" in labels:
        return {"mask", "points", "box"}
    if "masks" in labels:
        return {"mask"}
    if "points" in labels:
        return {"points"}
    if labels <= BOX_LABELS:
        return {"points", "box"}
    return {"mask", "points", "box"}


def apply_mask_losses(losses: Iterable[nn.Module], mask_logits: torch.Tensor, inputs: MaskLossInputs,
                      per_object: bool = False) -> Dict[str, torch.Tensor]:
    """Every loss's dict on ``mask_logits`` (n, 1, h, w); with ``per_object``, each on the instances
    :func:`supervised_instances` gives it."""
    out = {}
    for loss in losses:
        keep = supervised_instances(loss.LABELS, inputs) if per_object and len(inputs) else None
        if keep is None or bool(keep.all()):
            out.update(loss(mask_logits, inputs))
        else:
            out.update(loss(mask_logits[keep], inputs.subset(keep)))
    return out


def configured_mask_losses(cfg) -> Dict[str, tuple]:
    """{loss name: the labels it reads} of the mask losses ``cfg``'s model trains with: CondInst's
    ``MODEL.CONDINST.MASK_LOSSES``, a Mask R-CNN head's ``MODEL.ROI_MASK_HEAD.MASK_LOSSES`` when the head
    takes them (``ALLOWED_LABELS``), ``{"mask BCE": ("masks",)}`` for detectron2's own mask head; empty
    without masks (``MODEL.MASK_ON`` False)."""
    if not cfg.MODEL.MASK_ON:
        return {}
    if cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN":
        head = ROI_MASK_HEAD_REGISTRY.get(cfg.MODEL.ROI_MASK_HEAD.NAME)
        if getattr(head, "ALLOWED_LABELS", None) is None:
            return {"mask BCE": ("masks",)}
        names = cfg.MODEL.ROI_MASK_HEAD.MASK_LOSSES
    else:
        names = cfg.MODEL.CONDINST.MASK_LOSSES
    return {name: tuple(MASK_LOSS_REGISTRY.get(name).LABELS) for name in names if name in MASK_LOSS_REGISTRY}
