"""PointSup (Cheng, Parkhi, Kirillov, "Pointly-Supervised Instance Segmentation", CVPR 2022).

Each object is labelled with its box and a few points (10 by default, drawn
uniformly in the box) marked on or off the object. Detection trains from the
boxes as usual; the mask head trains from ``PointLoss`` alone: its logits are
read bilinearly at the points and scored with binary cross-entropy.

- Mask R-CNN (the paper's model): ``PointSupMaskRCNNHead`` is detectron2's
  conv-upsample mask head with the point loss in each RoI's frame (points
  outside the proposal box are ignored, as in the paper); inference unchanged.
- CondInst (this project): ``PointSupCondInst`` applies the same ``PointLoss``
  to the dynamic head's full-image logits. A RoI crops Mask R-CNN's mask to its
  box, CondInst's full-image mask has no such crop, so the shipped configs add
  ``ProjectionLoss`` (the box says everything outside it is background).

Neither model may read masks: a mask loss in their config fails at build time.
"""
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.roi_heads import ROI_MASK_HEAD_REGISTRY

from ..condinst import CondInst
from ..roi_heads.box_supervised import BoxSupervisedMaskRCNNHead

POINT_SUPERVISION = ("boxes", "points")


@META_ARCH_REGISTRY.register()
class PointSupCondInst(CondInst):
    ALLOWED_LABELS = POINT_SUPERVISION


@ROI_MASK_HEAD_REGISTRY.register()
class PointSupMaskRCNNHead(BoxSupervisedMaskRCNNHead):
    """Mask R-CNN's mask head trained by ``MODEL.ROI_MASK_HEAD.MASK_LOSSES`` from boxes and points
    (``["PointLoss"]`` in the PointSup configs)."""

    ALLOWED_LABELS = POINT_SUPERVISION
