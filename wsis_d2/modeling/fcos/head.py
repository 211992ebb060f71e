"""FCOS prediction head (Tian et al., "FCOS: Fully Convolutional One-Stage Object Detection", ICCV 2019).

Two towers of 3x3 conv + norm + ReLU shared across FPN levels: the
classification tower feeds the class logits; the box tower feeds the box
regression, the centerness (on the box tower, as in the improved FCOS) and an
optional extra output (CondInst's controller, which predicts each location's
dynamic mask-head parameters).
"""
import math
from typing import Dict, List

import torch
from detectron2.layers import ShapeSpec, get_norm
from torch import nn
from torch.nn import functional as F


class Scale(nn.Module):
    """A learnable scalar multiplier (one per FPN level for the box regression)."""

    def __init__(self, init_value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self, x):
        return x * self.scale


def _tower(channels: int, num_convs: int, norm: str) -> nn.Sequential:
    layers = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=not norm), get_norm(norm, channels), nn.ReLU()]
    return nn.Sequential(*[layer for layer in layers if layer is not None])


class FCOSHead(nn.Module):
    def __init__(self, input_shapes: List[ShapeSpec], num_classes: int, num_cls_convs: int = 4,
                 num_box_convs: int = 4, norm: str = "GN", prior_prob: float = 0.01,
                 use_scale: bool = True, extra_out_channels: int = 0, detach_extra_input: bool = False):
        """
        Args:
            input_shapes: one per FPN level; all must have the same channel count.
            extra_out_channels: if > 0, a 3x3 conv on the box tower with this many
                outputs per location (CondInst's controller).
            detach_extra_input: the extra conv reads the box tower's features detached: its
                losses train the extra conv but never reach the box tower (nor the FPN through it).
        """
        super().__init__()
        self.detach_extra_input = detach_extra_input
        channels = {s.channels for s in input_shapes}
        if len(channels) != 1:
            raise ValueError(f"FCOS needs FPN levels of equal width, got channels {sorted(channels)}")
        c = channels.pop()
        self.cls_tower = _tower(c, num_cls_convs, norm)
        self.box_tower = _tower(c, num_box_convs, norm)
        self.cls_logits = nn.Conv2d(c, num_classes, 3, padding=1)
        self.box_pred = nn.Conv2d(c, 4, 3, padding=1)
        self.ctrness = nn.Conv2d(c, 1, 3, padding=1)
        self.extra = nn.Conv2d(c, extra_out_channels, 3, padding=1) if extra_out_channels > 0 else None
        self.scales = nn.ModuleList([Scale(1.0) for _ in input_shapes]) if use_scale else None

        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, features: List[torch.Tensor]) -> Dict[str, List[torch.Tensor]]:
        """
        Args:
            features: FPN maps, each (N, C, Hl, Wl).

        Returns:
            dict of per-level lists: ``logits`` (N, K, Hl, Wl); ``box_reg`` (N, 4, Hl, Wl),
            non-negative (l, t, r, b) distances in units of the level's stride;
            ``ctrness`` (N, 1, Hl, Wl) logits; ``extra`` (N, E, Hl, Wl) if configured.
        """
        out = {"logits": [], "box_reg": [], "ctrness": [], "extra": []}
        for level, feature in enumerate(features):
            cls_feat = self.cls_tower(feature)
            box_feat = self.box_tower(feature)
            reg = self.box_pred(box_feat)
            if self.scales is not None:
                reg = self.scales[level](reg)
            out["logits"].append(self.cls_logits(cls_feat))
            out["box_reg"].append(F.relu(reg))
            out["ctrness"].append(self.ctrness(box_feat))
            if self.extra is not None:
                out["extra"].append(self.extra(box_feat.detach() if self.detach_extra_input else box_feat))
        return out
