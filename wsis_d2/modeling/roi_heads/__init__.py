"""Heads for detectron2's Mask R-CNN that train from weak labels."""
from .box_supervised import BoxSupervisedMaskRCNNHead, BoxSupervisedROIHeads, MixedMaskRCNNHead, RoIFrameInputs

__all__ = ["BoxSupervisedMaskRCNNHead", "BoxSupervisedROIHeads", "MixedMaskRCNNHead", "RoIFrameInputs"]
