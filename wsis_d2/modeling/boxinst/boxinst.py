"""BoxInst (Tian, Shen, Wang, Chen, "BoxInst: High-Performance Instance Segmentation with Box
Annotations", CVPR 2021).

CondInst trained from boxes alone: the detector, mask branch, dynamic mask
head and inference are CondInst's, unchanged (same inference graph, same
speed). Only the mask losses differ: ``ProjectionLoss`` + ``PairwiseColorLoss``
(``wsis_d2/modeling/losses``), and the model refuses any configured loss that
would read masks. Positives for the mask loss: 64 per image, split across the
GT boxes and ranked by cls x ctrness (``MODEL.CONDINST.TOPK_PROPOSALS_PER_IM``).
"""
from detectron2.modeling import META_ARCH_REGISTRY

from ..condinst import CondInst


@META_ARCH_REGISTRY.register()
class BoxInst(CondInst):
    ALLOWED_LABELS = ("boxes",)
