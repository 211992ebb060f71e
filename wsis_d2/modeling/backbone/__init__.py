from .fpn import build_fcos_resnet_fpn_backbone
from .mobilenet import MobileNetV2, build_fcos_mobilenetv2_fpn_backbone, build_mobilenetv2_fpn_backbone
from .pretrained import PRETRAINED, WSISHandler  # noqa: F401  (registers the wsis:// weights handler)

__all__ = ["MobileNetV2", "PRETRAINED", "WSISHandler", "build_fcos_mobilenetv2_fpn_backbone",
           "build_fcos_resnet_fpn_backbone", "build_mobilenetv2_fpn_backbone"]
