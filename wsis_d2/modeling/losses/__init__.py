"""Mask losses (one file each) in ``MASK_LOSS_REGISTRY``, and what they read (``inputs``)."""
from .dice import DiceMaskLoss, dice_loss
from .inputs import ImageFrameInputs, MaskLossInputs
from .mask_bce import MaskBCELoss
from .pairwise_color import PairwiseColorLoss, pairwise_color_loss
from .point import PointLoss, point_loss, sample_at_points
from .projection import ProjectionLoss, projection_loss
from .pseudo_mask import PseudoAffinityLoss, PseudoMaskLoss, pseudo_affinity_loss, pseudo_masks, weighted_dice_loss
from .registry import MASK_LOSS_REGISTRY, build_mask_losses

__all__ = ["MASK_LOSS_REGISTRY", "DiceMaskLoss", "ImageFrameInputs", "MaskBCELoss", "MaskLossInputs", "PairwiseColorLoss",
           "PointLoss", "ProjectionLoss", "PseudoAffinityLoss", "PseudoMaskLoss", "build_mask_losses", "dice_loss",
           "pairwise_color_loss", "point_loss", "projection_loss", "pseudo_affinity_loss", "pseudo_masks",
           "sample_at_points", "weighted_dice_loss"]
