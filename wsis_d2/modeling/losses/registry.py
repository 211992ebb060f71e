"""``MASK_LOSS_REGISTRY``: the losses that turn predicted mask logits into a training signal.

A mask loss is an ``nn.Module`` built as ``LossClass(cfg)`` and called as
``loss(mask_logits, inputs)`` with (n, 1, h, w) logits and a
:class:`~wsis_d2.modeling.losses.inputs.MaskLossInputs`; it returns a dict of
named losses. Each class declares in ``LABELS`` which annotations it reads
("masks", "boxes", "points"; and what a teacher-student model adds: "pseudo_masks",
"teacher_features"), so a box-supervised model can refuse a loss that
would need masks, and swapping losses in the config changes the supervision,
not the detector. A loss that reads what only full-image logits have (per-image
maps of :class:`~wsis_d2.modeling.losses.inputs.ImageFrameInputs`) sets
``NEEDS_FULL_IMAGE = True``, and a RoI mask head refuses it.
"""
from typing import Iterable

from detectron2.utils.registry import Registry
from torch import nn

MASK_LOSS_REGISTRY = Registry("MASK_LOSS")
MASK_LOSS_REGISTRY.__doc__ = """
Registry for mask losses, by class name. Each is called as ``loss(mask_logits, inputs)``
and returns ``Dict[str, Tensor]``; its ``LABELS`` say which annotations it reads.
"""


def _known() -> list:
    return sorted(name for name, _ in MASK_LOSS_REGISTRY)


def build_mask_losses(cfg, names: Iterable[str], allowed_labels=None) -> nn.ModuleList:
    """Build the named mask losses.

    Args:
        allowed_labels: if given, a loss reading other labels (e.g. "masks" for a
            box-supervised model) raises a clear error.
    """
    losses = []
    for name in names:
        if name not in MASK_LOSS_REGISTRY:
            raise KeyError(f"mask loss {name!r} is not registered; known: {_known()}")
        cls = MASK_LOSS_REGISTRY.get(name)
        if allowed_labels is not None and not set(cls.LABELS) <= set(allowed_labels):
            raise ValueError(f"mask loss {name} reads {sorted(cls.LABELS)}, but this model may only read "
                             f"{sorted(allowed_labels)}")
        losses.append(cls(cfg))
    return nn.ModuleList(losses)


def linear_ramp(iteration: int, length: int, start: int = 0) -> float:
    """Warm-up factor: 0 before ``start``, then min((iteration - start) / length, 1); 1 from ``start``
    on when ``length`` <= 0."""
    if iteration < start:
        return 0.0
    return min((iteration - start) / float(length), 1.0) if length > 0 else 1.0
