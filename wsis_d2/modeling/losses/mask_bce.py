"""Mask R-CNN's fully-supervised mask loss (He, Gkioxari, Dollár, Girshick, "Mask R-CNN", ICCV 2017)
as a registered loss: per-pixel binary cross-entropy between the logits and the GT masks in the
logits' frame, averaged over the pixels of every instance it gets. Registered so that a mixed-supervised
Mask R-CNN head (:class:`~wsis_d2.modeling.roi_heads.MixedMaskRCNNHead`) can train its objects with
masks by it and the others by the weak losses."""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from .inputs import MaskLossInputs
from .registry import MASK_LOSS_REGISTRY


@MASK_LOSS_REGISTRY.register()
class MaskBCELoss(nn.Module):
    """Fully-supervised: mean BCE of the logits against the (soft) GT masks."""

    LABELS = ("masks",)

    def __init__(self, cfg=None):
        super().__init__()

    def forward(self, mask_logits: torch.Tensor, inputs: MaskLossInputs) -> Dict[str, torch.Tensor]:
        if mask_logits.shape[0] == 0:
            return {"loss_mask": mask_logits.sum() * 0}
        targets = inputs.gt_masks().to(mask_logits.dtype)
        return {"loss_mask": F.binary_cross_entropy_with_logits(mask_logits, targets)}
