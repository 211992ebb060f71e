"""``MASK_LOSS_REGISTRY``: the losses that turn predicted mask logits into a training signal.

A mask loss is an ``nn.Module`` built as ``LossClass(cfg)``; it is called with
the instances' mask logits and a :class:`MaskLossInputs` and returns a dict of
named losses. Each loss reads only the labels it needs (masks, boxes, points),
so swapping losses in the config changes the supervision, not the detector.
"""
from dataclasses import dataclass, field
from typing import Dict, List

import torch
from detectron2.structures import Instances
from detectron2.utils.registry import Registry
from torch import nn

MASK_LOSS_REGISTRY = Registry("MASK_LOSS")
MASK_LOSS_REGISTRY.__doc__ = """
Registry for mask losses. Each is called as ``loss(mask_logits, inputs: MaskLossInputs)``
and returns ``Dict[str, Tensor]``.
"""


@dataclass
class MaskLossInputs:
    """What a mask loss may read about the n instances whose logits it gets.

    gt_instances: the batch's GT ``Instances`` (boxes always; masks/points
        only when the data view has them), in the padded input frame.
    im_inds: (n,) image index of each instance; gt_inds: (n,) index into
        that image's GT instances.
    mask_stride: stride of the logits relative to the padded input.
    padded_size: (H, W) of the padded input batch.
    images: (N, 3, H, W) the normalised input batch (colour-based losses).
    iteration: current training iteration (warm-ups).
    """

    gt_instances: List[Instances]
    im_inds: torch.Tensor
    gt_inds: torch.Tensor
    mask_stride: int
    padded_size: tuple
    images: torch.Tensor = None
    iteration: int = 0
    extra: dict = field(default_factory=dict)


def build_mask_losses(cfg, names) -> nn.ModuleList:
    """Build the named mask losses; an unknown name lists the registered ones."""
    losses = []
    for name in names:
        if name not in MASK_LOSS_REGISTRY:
            raise KeyError(f"mask loss {name!r} is not registered; known: {sorted(k for k, _ in MASK_LOSS_REGISTRY)}")
        losses.append(MASK_LOSS_REGISTRY.get(name)(cfg))
    return nn.ModuleList(losses)
