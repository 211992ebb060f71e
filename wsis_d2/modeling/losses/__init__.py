from .dice import dice_loss
from .registry import MASK_LOSS_REGISTRY, MaskLossInputs, build_mask_losses

__all__ = ["MASK_LOSS_REGISTRY", "MaskLossInputs", "build_mask_losses", "dice_loss"]
