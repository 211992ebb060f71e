"""BoxLevelSet (Li, Hu, Wang, Liang, Zhang, "Box-supervised Instance Segmentation with Level Set
Evolution", ECCV 2022).

Each predicted mask is a level-set function evolved inside its GT box by
minimising a Chan-Vese energy (``LevelSetLoss``) on the image and on deep
features, next to BoxInst's projection term (weight 3) that gives the
box-constrained initial contour; the evolution is implicit, one step per SGD
iteration.

Deviation from the reference: it is built on SOLOv2 in MMDetection; here it
uses this project's CondInst detector and dynamic mask head (same inference
as CondInst), and the CUDA-only tree filter that smooths the deep features is
replaced by a guided filter written in torch (runs on CPU and GPU).
"""
from detectron2.modeling import META_ARCH_REGISTRY

from ..condinst import CondInst


@META_ARCH_REGISTRY.register()
class BoxLevelSet(CondInst):
    ALLOWED_LABELS = ("boxes",)
