"""SIM's pairwise loss (Li et al., "SIM: Semantic-aware Instance Mask Generation for
Box-Supervised Instance Segmentation", CVPR 2023).

BoxInst's pairwise term (-log P(same label) over the box's similar edges), where an
edge's affinity is its colour similarity times the similarity of the EMA teacher's
mask features at its two ends, exp(-||f_i - f_j||) of unit-normalised features: two
pixels of one colour that the teacher tells apart are no longer pulled together.
Edges count where that product is at least ``MODEL.SIM.PAIRWISE_THRESH`` (the
reference's 0.1, against BoxInst's colour-only 0.3). Size, dilation, weight and
warm-up are BoxInst's (``MODEL.BOXINST.PAIRWISE``), and like BoxInst's term it runs
from iteration 0 (the pseudo labels wait for ``MODEL.SIM.START_ITER``).
"""
import torch

from ..losses.inputs import ImageFrameInputs
from ..losses.pairwise import unit_feature_similarity
from ..losses.pairwise_color import PairwiseColorLoss
from ..losses.registry import MASK_LOSS_REGISTRY


@MASK_LOSS_REGISTRY.register()
class TeacherFeaturePairwiseLoss(PairwiseColorLoss):
    """Box-supervised: neighbours alike in colour and in the teacher's features share a label."""

    LABELS = ("boxes", "teacher_features")
    # the teacher's features are per image: full-image logits only
    NEEDS_FULL_IMAGE = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.edge_thresh = cfg.MODEL.SIM.PAIRWISE_THRESH

    def similar_edges(self, inputs: ImageFrameInputs) -> torch.Tensor:
        """(n, K, H, W) bool: valid edges whose colour x teacher-feature similarity is >= ``edge_thresh``
        (per image, then copied per instance)."""
        similarity, valid = inputs.image_color_graph(self.size, self.dilation, self.bottom_pixels_removed)
        similarity = similarity * unit_feature_similarity(inputs.mask_features(teacher=True), self.size,
                                                          self.dilation)
        return inputs.select((similarity >= self.edge_thresh) & valid)
