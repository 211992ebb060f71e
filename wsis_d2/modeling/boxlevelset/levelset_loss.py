"""BoxLevelSet's level-set energy (Li et al., ECCV 2022, Sec. 3.2-3.3), a registered mask loss.

The mask probability m plays the Heaviside H(phi) of the level-set function.
Inside the GT box B, with u the input (image or deep features, C channels):

    c1 = sum_B u m / sum_B m,   c2 = sum_B u (1 - m) / sum_B (1 - m)
    E(u) = sum_B [ |u - c1|^2 m + |u - c2|^2 (1 - m) ] / C / |B|
    L = w_img E(image) + w_deep E(features) + w_len sum_B |grad m|

The image term uses the image standardised with ImageNet's mean/std at the
logits' resolution (weight 0.05, the reference's normalisation, independent of
the detector's PIXEL_STD). Sums run over the box only, as in the reference
(which multiplies m and 1 - m by the box mask).

Deviation in the deep term (weight 5.0): the reference builds its input from
the mask itself, tree-filtered (a CUDA op) under the image's and under a learnt
5-channel feature's minimum spanning trees, with gradients through the mask.
Here u is the mask-branch features, L2-normalised per pixel, smoothed by a
guided filter guided by the image, and detached, so the energy moves the
contour towards regions of homogeneous deep features and not the features.
"""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.inputs import ImageFrameInputs
from ..losses.registry import MASK_LOSS_REGISTRY
from .guided_filter import guided_filter

IMAGENET_RGB_MEAN = (123.675, 116.28, 103.53)
IMAGENET_RGB_STD = (58.395, 57.12, 57.375)


def normalized_images(inputs: ImageFrameInputs) -> torch.Tensor:
    """(N, 3, H/s, W/s) the input images in RGB standardised with ImageNet's mean/std (as the level-set
    reference), whatever ``MODEL.PIXEL_STD`` the detector uses, average-pooled to the logits' stride s."""
    s = inputs.stride
    rgb = inputs.rgb_images()
    mean = rgb.new_tensor(IMAGENET_RGB_MEAN).view(1, 3, 1, 1)
    std = rgb.new_tensor(IMAGENET_RGB_STD).view(1, 3, 1, 1)
    return F.avg_pool2d((rgb - mean) / std, kernel_size=s, stride=s)


def levelset_energy(probs: torch.Tensor, u: torch.Tensor, box_weights: torch.Tensor) -> torch.Tensor:
    """Chan-Vese region energy per instance.

    Args:
        probs: (n, 1, h, w) mask probabilities m.
        u: (n, C, h, w) the input being segmented.
        box_weights: (n, 1, h, w) share of each cell inside the box.

    Returns:
        (n,) energies.
    """
    fg = probs * box_weights
    bg = (1 - probs) * box_weights
    c1 = (u * fg).sum(dim=(2, 3), keepdim=True) / fg.sum(dim=(2, 3), keepdim=True).clamp(min=1e-5)
    c2 = (u * bg).sum(dim=(2, 3), keepdim=True) / bg.sum(dim=(2, 3), keepdim=True).clamp(min=1e-5)
    energy = ((u - c1) ** 2 * fg + (u - c2) ** 2 * bg).sum(dim=(2, 3)).mean(dim=1)
    return energy / box_weights.sum(dim=(1, 2, 3)).clamp(min=1e-5)


def contour_length(probs: torch.Tensor, box_weights: torch.Tensor) -> torch.Tensor:
    """(n,) total variation sum |dm/dy| + |dm/dx| inside the box."""
    dy = (probs[:, :, 1:, :] - probs[:, :, :-1, :]).abs() * box_weights[:, :, 1:, :]
    dx = (probs[:, :, :, 1:] - probs[:, :, :, :-1]).abs() * box_weights[:, :, :, 1:]
    return dy.sum(dim=(1, 2, 3)) + dx.sum(dim=(1, 2, 3))


@MASK_LOSS_REGISTRY.register()
class LevelSetLoss(nn.Module):
    """Box-supervised: Chan-Vese energy of the mask inside its box on image and deep features."""

    LABELS = ("boxes",)
    NEEDS_FULL_IMAGE = True

    def __init__(self, cfg):
        super().__init__()
        c = cfg.MODEL.BOXLEVELSET
        self.image_weight = c.IMAGE_WEIGHT
        self.deep_weight = c.DEEP_WEIGHT
        self.length_weight = c.LENGTH_WEIGHT
        self.radius = c.FILTER_RADIUS
        self.eps = c.FILTER_EPS

    def forward(self, mask_logits: torch.Tensor, inputs: ImageFrameInputs) -> Dict[str, torch.Tensor]:
        if mask_logits.shape[0] == 0:
            return {"loss_levelset": mask_logits.sum() * 0}
        probs = mask_logits.sigmoid()
        box_weights = inputs.box_masks(*mask_logits.shape[-2:])[:, None]
        images = normalized_images(inputs)  # per image: filtered once, not per instance
        loss = self.image_weight * levelset_energy(probs, inputs.select(images), box_weights)
        if self.deep_weight > 0:
            guide = images.mean(dim=1, keepdim=True)
            guide = (guide - guide.amin(dim=(2, 3), keepdim=True)) / (
                guide.amax(dim=(2, 3), keepdim=True) - guide.amin(dim=(2, 3), keepdim=True)).clamp(min=1e-5)
            feats = F.normalize(inputs.mask_features().detach(), dim=1)
            smoothed = guided_filter(guide, feats, self.radius, self.eps)
            loss = loss + self.deep_weight * levelset_energy(probs, inputs.select(smoothed), box_weights)
        loss = loss + self.length_weight * contour_length(probs, box_weights)
        return {"loss_levelset": loss.mean()}
