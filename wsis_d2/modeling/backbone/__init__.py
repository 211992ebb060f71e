from .fpn import build_fcos_resnet_fpn_backbone

__all__ = ["build_fcos_resnet_fpn_backbone"]
