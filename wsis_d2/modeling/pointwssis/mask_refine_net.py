"""MaskRefineNet of PointWSSIS (Kim, Jang, Kim, Kweon, Kim, "The Devil is in the Points:
Weakly Semi-Supervised Instance Segmentation via Point-Guided Mask Representation", CVPR 2023).

Input: an object crop resized to S x S: RGB (3), a rough mask (1: the teacher's, or
the box prior's, see :mod:`.rough_select`) and
a class-wise Gaussian heat-map of the object's point (C + 1, see
:func:`point_heatmaps`). Output: refined mask logits (1, S, S). The reference is
a ResNet-101 U-Net with ASPP (dilations 3/6/9) trained with dice; this one is a
small U-Net from scratch (GroupNorm) with the same ASPP at its bottleneck, sized
for CPU work (``width`` sets the channels).
"""
from typing import List

import torch
import torch.nn.functional as F
from torch import nn


def _conv(in_ch: int, out_ch: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.GroupNorm(min(8, out_ch), out_ch), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    """Parallel dilated 3x3 convs (+ a 1x1), concatenated and fused by a 1x1 conv."""

    def __init__(self, channels: int, dilations=(3, 6, 9)):
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True))]
                                      + [_conv(channels, channels, d) for d in dilations])
        self.fuse = nn.Conv2d(channels * (len(dilations) + 1), channels, 1)

    def forward(self, x):
        return self.fuse(torch.cat([b(x) for b in self.branches], dim=1))


class MaskRefineNet(nn.Module):
    """
    Args:
        num_classes: C (the heat-map has C + 1 channels).
        width: channels of the first level (doubled per level).
        depth: number of down-sampling levels.

    forward: (N, 3 + 1 + C + 1, S, S) -> (N, 1, S, S) logits; S divisible by 2**depth.
    """

    DEFAULT_DEPTH = 3

    def __init__(self, num_classes: int, width: int = 16, depth: int = DEFAULT_DEPTH):
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = 3 + 1 + num_classes + 1
        chans = [width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        prev = self.in_channels
        for c in chans:
            self.down.append(nn.Sequential(_conv(prev, c), _conv(c, c)))
            prev = c
        self.aspp = ASPP(chans[-1])
        self.up = nn.ModuleList([nn.Sequential(_conv(chans[i + 1] + chans[i], chans[i]), _conv(chans[i], chans[i]))
                                 for i in reversed(range(depth))])
        self.head = nn.Conv2d(chans[0], 1, 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"MaskRefineNet expects {self.in_channels} input channels (RGB, mask, "
                             f"{self.num_classes + 1} heat-maps), got {x.shape[1]}")
        if x.shape[-1] % 2 ** self.depth or x.shape[-2] % 2 ** self.depth:
            raise ValueError(f"crop size {tuple(x.shape[-2:])} must be divisible by {2 ** self.depth}")
        skips: List[torch.Tensor] = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = self.aspp(skips.pop())
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False),
                                 skip], dim=1))
        return self.head(x)


def point_heatmaps(points: torch.Tensor, classes: torch.Tensor, num_classes: int, size: int,
                   sigma: float = 6.0) -> torch.Tensor:
    """Class-wise Gaussian heat-maps of one point per crop.

    Args:
        points: (N, 2) (x, y) in crop pixels (pixel centres at +0.5); classes: (N,) in [0, C).

    Returns:
        (N, C + 1, S, S): channel 0 holds every point (class-agnostic), channel 1 + c
        the point of class c; the rest are zero.
    """
    n = points.shape[0]
    coords = torch.arange(size, device=points.device, dtype=points.dtype) + 0.5
    gx = torch.exp(-((coords[None] - points[:, :1]) ** 2) / (2 * sigma ** 2))  # (N, S)
    gy = torch.exp(-((coords[None] - points[:, 1:]) ** 2) / (2 * sigma ** 2))
    gauss = gy[:, :, None] * gx[:, None, :]
    maps = points.new_zeros((n, num_classes + 1, size, size))
    maps[:, 0] = gauss
    maps[torch.arange(n, device=points.device), 1 + classes.long()] = gauss
    return maps
