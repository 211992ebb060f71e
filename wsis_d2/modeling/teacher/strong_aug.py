"""The student's strong view: photometric only, so boxes and pseudo masks need no transform.

BoxTeacher's ``strong`` augmentation: ColorJitter(0.4, 0.4, 0.4, 0.1) with
probability 0.8, then grayscale with probability 0.2 (torchvision's ops, on
tensors, on the model's device).
"""
import torch
from torchvision import transforms as T

_JITTER = T.Compose([T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2)])


def strong_photometric(image: torch.Tensor, image_format: str = "BGR") -> torch.Tensor:
    """(3, H, W) 0-255 image in ``image_format`` -> the same, jittered."""
    rgb = image.flip(0) if image_format == "BGR" else image
    out = _JITTER(rgb.float().clamp(0, 255) / 255.0) * 255.0
    return out.flip(0) if image_format == "BGR" else out
