from .copy_paste import ObjectBank, paste_objects
from .feature_pairwise import TeacherFeaturePairwiseLoss
from .loss import SemanticPseudoMaskLoss, semantic_pseudo_mask_loss
from .prototypes import ClassPrototypes, sinkhorn
from .semantic_masks import semantic_pseudo_label
from .sim import SIM, SIMStudent

__all__ = ["ClassPrototypes", "ObjectBank", "SIM", "SIMStudent", "SemanticPseudoMaskLoss",
           "TeacherFeaturePairwiseLoss", "paste_objects", "semantic_pseudo_label", "semantic_pseudo_mask_loss",
           "sinkhorn"]
