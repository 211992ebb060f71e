"""MobileNetV2 (Sandler et al., CVPR 2018) as a detectron2 backbone, and its FPNs.

The trunk is torchvision's ``mobilenet_v2().features`` without its last block (the 1x1 conv to 1280
channels that only feeds ImageNet's classifier), so its parameter names are torchvision's
(``features.<block>...``) and ImageNet weights load by name (see :mod:`.pretrained`). Its 18 blocks
are grouped into stages at the points where the stride doubles, named like detectron2's ResNet so
that configs switch backbones by ``MODEL.BACKBONE.NAME`` alone:

=========  ======  ======  ========
stage      blocks  stride  channels
=========  ======  ======  ========
``stem``   0-1     2       16
``res2``   2-3     4       24
``res3``   4-6     8       32
``res4``   7-13    16      96
``res5``   14-17   32      320
=========  ======  ======  ========

Two FPNs on it: ``build_fcos_mobilenetv2_fpn_backbone`` (P3-P7, or P2-P7 with ``res2`` in
``MODEL.FPN.IN_FEATURES``; P6/P7 from P5 as FCOS and CondInst use them) and
``build_mobilenetv2_fpn_backbone`` (P2-P6 with a max-pooled P6, as detectron2's Mask R-CNN uses).
"""
from typing import Dict, List, Sequence

import torch
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec, get_norm
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from torch import nn
from torchvision.models import mobilenet_v2

from ...config import ConfigError
from .fpn import fcos_top_block, fpn_from_config

# stage name -> (first block, last block, stride, out channels)
MOBILENET_V2_STAGES = {
    "stem": (0, 1, 2, 16),
    "res2": (2, 3, 4, 24),
    "res3": (4, 6, 8, 32),
    "res4": (7, 13, 16, 96),
    "res5": (14, 17, 32, 320),
}
# the normalisations that keep BatchNorm's parameters and statistics, so that ImageNet weights load
BN_LIKE_NORMS = ("FrozenBN", "BN", "SyncBN", "nnSyncBN", "naiveSyncBN")


def _replace_batchnorm(module: nn.Module, norm: str) -> nn.Module:
    """``module`` with every ``nn.BatchNorm2d`` below it replaced by ``get_norm(norm, channels)``."""
    if type(module) is nn.BatchNorm2d:
        return get_norm(norm, module.num_features)
    for name, child in module.named_children():
        new = _replace_batchnorm(child, norm)
        if new is not child:
            setattr(module, name, new)
    return module


class MobileNetV2(Backbone):
    """MobileNetV2 (width 1.0) feature trunk: ``stem`` and ``res2``-``res5`` (see the module docstring).

    Forward: (N, 3, H, W) normalised RGB -> {name: (N, C_name, H / stride_name, W / stride_name)} for
    each name of ``out_features``.
    """

    def __init__(self, *, out_features: Sequence[str] = ("res2", "res3", "res4", "res5"), norm: str = "FrozenBN",
                 freeze_at: int = 0):
        """
        Args:
            out_features: stages to return, a subset of ``stem``, ``res2`` ... ``res5``.
            norm: a BatchNorm-like detectron2 norm (:data:`BN_LIKE_NORMS`) for every BatchNorm of the
                trunk; ``FrozenBN`` keeps the ImageNet statistics and affine parameters fixed.
            freeze_at: 0 trains everything; k >= 1 freezes the first k stages (1: ``stem``, 2: ``stem``
                and ``res2``, ...), their convs and norms, as ``MODEL.BACKBONE.FREEZE_AT`` does for ResNets.
        """
        super().__init__()
        if norm not in BN_LIKE_NORMS:
            raise ConfigError(f"MODEL.MOBILENET.NORM: {norm!r} cannot hold MobileNetV2's BatchNorm weights; "
                              f"use one of {', '.join(BN_LIKE_NORMS)}")
        unknown = [f for f in out_features if f not in MOBILENET_V2_STAGES]
        if unknown or not out_features:
            raise ConfigError(f"MobileNetV2 has no output {unknown or list(out_features)}; "
                              f"it has {', '.join(MOBILENET_V2_STAGES)}")
        if not 0 <= freeze_at <= len(MOBILENET_V2_STAGES):
            raise ConfigError(f"MODEL.BACKBONE.FREEZE_AT: {freeze_at} for MobileNetV2 must be in "
                              f"[0, {len(MOBILENET_V2_STAGES)}]")
        names = list(MOBILENET_V2_STAGES)
        self._out_features = sorted(out_features, key=names.index)
        last = MOBILENET_V2_STAGES[self._out_features[-1]][1]
        # torchvision's module names are kept (slicing a Sequential keeps its keys); no download
        self.features = mobilenet_v2().features[: last + 1]
        if norm != "BN":
            _replace_batchnorm(self.features, norm)
        self._stage_ends = {MOBILENET_V2_STAGES[n][1]: n for n in names if MOBILENET_V2_STAGES[n][1] <= last}
        self._out_feature_strides = {n: MOBILENET_V2_STAGES[n][2] for n in self._out_features}
        self._out_feature_channels = {n: MOBILENET_V2_STAGES[n][3] for n in self._out_features}
        self.freeze(freeze_at)

    def freeze(self, freeze_at: int = 0) -> "MobileNetV2":
        """Freeze the first ``freeze_at`` stages: no gradient, and their norms turned into FrozenBN."""
        for name in list(MOBILENET_V2_STAGES)[:freeze_at]:
            first, last = MOBILENET_V2_STAGES[name][:2]
            for index in range(first, min(last, len(self.features) - 1) + 1):
                block = self.features[index]
                for p in block.parameters():
                    p.requires_grad = False
                self.features[index] = FrozenBatchNorm2d.convert_frozen_batchnorm(block)
        return self

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        outputs = {}
        for index, block in enumerate(self.features):
            x = block(x)
            name = self._stage_ends.get(index)
            if name in self._out_feature_strides:
                outputs[name] = x
        return outputs

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {n: ShapeSpec(channels=self._out_feature_channels[n], stride=self._out_feature_strides[n])
                for n in self._out_features}


def build_mobilenetv2_trunk(cfg, out_features: List[str]) -> MobileNetV2:
    return MobileNetV2(out_features=out_features, norm=cfg.MODEL.MOBILENET.NORM,
                       freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)


@BACKBONE_REGISTRY.register()
def build_fcos_mobilenetv2_fpn_backbone(cfg, input_shape: ShapeSpec):
    """MobileNetV2-FPN for FCOS / CondInst: P<first of MODEL.FPN.IN_FEATURES>-P5, plus
    ``MODEL.FPN.TOP_LEVELS`` levels (P6, P7) from P5."""
    return fpn_from_config(cfg, build_mobilenetv2_trunk(cfg, cfg.MODEL.FPN.IN_FEATURES), fcos_top_block(cfg))


@BACKBONE_REGISTRY.register()
def build_mobilenetv2_fpn_backbone(cfg, input_shape: ShapeSpec):
    """MobileNetV2-FPN for detectron2's Mask R-CNN: P2-P5 and a max-pooled P6 (as its ResNet-FPN)."""
    return fpn_from_config(cfg, build_mobilenetv2_trunk(cfg, cfg.MODEL.FPN.IN_FEATURES), LastLevelMaxPool())
