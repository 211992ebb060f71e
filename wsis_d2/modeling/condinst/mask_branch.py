"""CondInst's mask branch (Tian et al., "Conditional Convolutions for Instance Segmentation", ECCV 2020).

P3-P5 are each refined by a 3x3 conv, resized to P3 and summed; a tower of
3x3 convs and a 1x1 conv then give the shared mask features F_mask
(N, OUT_CHANNELS, H/8, W/8) that every instance's dynamic head reads.
"""
from typing import Dict

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec, get_norm
from torch import nn
from torch.nn import functional as F


def _conv_norm_relu(in_ch: int, out_ch: int, norm: str) -> nn.Sequential:
    layers = [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=not norm), get_norm(norm, out_ch), nn.ReLU()]
    return nn.Sequential(*[layer for layer in layers if layer is not None])


class MaskBranch(nn.Module):
    @configurable
    def __init__(self, *, input_shapes: Dict[str, ShapeSpec], in_features, channels: int, num_convs: int,
                 norm: str, out_channels: int):
        super().__init__()
        self.in_features = list(in_features)
        self.out_stride = input_shapes[self.in_features[0]].stride
        self.refine = nn.ModuleList(
            [_conv_norm_relu(input_shapes[name].channels, channels, norm) for name in self.in_features]
        )
        self.tower = nn.Sequential(
            *[_conv_norm_relu(channels, channels, norm) for _ in range(num_convs)],
            nn.Conv2d(channels, out_channels, 1),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        b = cfg.MODEL.CONDINST.MASK_BRANCH
        missing = [name for name in b.IN_FEATURES if name not in input_shape]
        if missing:
            raise ValueError(f"MODEL.CONDINST.MASK_BRANCH.IN_FEATURES {missing} are not backbone outputs")
        return {"input_shapes": input_shape, "in_features": b.IN_FEATURES, "channels": b.CHANNELS,
                "num_convs": b.NUM_CONVS, "norm": b.NORM, "out_channels": b.OUT_CHANNELS}

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        """FPN features -> mask features (N, OUT_CHANNELS, H/s, W/s), s = stride of the first in-feature."""
        x = None
        for name, refine in zip(self.in_features, self.refine):
            y = refine(features[name])
            if x is None:
                x = y
            else:
                x = x + F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.tower(x)
