"""ResNet-FPN with P6/P7 from P5, as FCOS and CondInst use.

Detectron2's ``build_resnet_backbone`` covers every depth (18 to 152); the
only difference to its ``build_retinanet_resnet_fpn_backbone`` is that P6/P7
are computed from P5 instead of C5 (FCOS paper, Sec. 3.1) and that their
count is configurable (``MODEL.FPN.TOP_LEVELS``: 0, 1 or 2).
"""
import torch.nn.functional as F
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.fpn import FPN, LastLevelP6P7
from detectron2.modeling.backbone.resnet import build_resnet_backbone
from torch import nn


class LastLevelP6(nn.Module):
    """One extra level: P6 as a stride-2 conv on P5."""

    def __init__(self, in_channels: int, out_channels: int, in_feature: str = "p5"):
        super().__init__()
        self.num_levels = 1
        self.in_feature = in_feature
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        nn.init.kaiming_uniform_(self.p6.weight, a=1)
        nn.init.constant_(self.p6.bias, 0)

    def forward(self, x):
        return [self.p6(F.relu(x))]


def fcos_top_block(cfg):
    """The ``MODEL.FPN.TOP_LEVELS`` extra levels on P5 (P6/P7, P6 or none) of an FCOS-style FPN."""
    out_channels = cfg.MODEL.FPN.OUT_CHANNELS
    top_levels = cfg.MODEL.FPN.TOP_LEVELS
    if top_levels == 2:
        return LastLevelP6P7(out_channels, out_channels, in_feature="p5")
    if top_levels == 1:
        return LastLevelP6(out_channels, out_channels, in_feature="p5")
    if top_levels == 0:
        return None
    raise ValueError(f"MODEL.FPN.TOP_LEVELS must be 0, 1 or 2, got {top_levels}")


def fpn_from_config(cfg, bottom_up, top_block) -> FPN:
    """detectron2's FPN on ``bottom_up`` with the ``MODEL.FPN`` settings and the given top block."""
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=top_block,
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


@BACKBONE_REGISTRY.register()
def build_fcos_resnet_fpn_backbone(cfg, input_shape: ShapeSpec):
    return fpn_from_config(cfg, build_resnet_backbone(cfg, input_shape), fcos_top_block(cfg))
