"""BoxTeacher (Cheng, Wang, Fang, Liu, Wang, "Boxteacher: Exploring High-Quality Pseudo Labels for
Box-supervised Instance Segmentation", CVPR 2023).

A student BoxInst learns from the GT boxes (projection + colour-pairwise
losses) and from the pseudo masks of its own EMA teacher: each training batch,
the teacher predicts on the plain images, its predictions claim GT boxes
(:func:`~wsis_d2.modeling.teacher.assign_pseudo_masks`: IoU >= 0.5, ranked by
mask-aware score), and the student, on a strongly jittered copy of the images,
gets ``PseudoMaskLoss`` (noise-aware weighted dice) and ``PseudoAffinityLoss``
(noise-reduced affinity) on the claimed boxes, from ``START_ITER`` on (before
it the student learns from the boxes alone, and the teacher runs only if a
loss needs its features). Evaluation uses the teacher by default.

Not in the reference, an option: SIM's pairwise term (``TeacherFeaturePairwiseLoss``
in ``MODEL.CONDINST.MASK_LOSSES`` in place of ``PairwiseColorLoss``) keeps only the
colour edges that the teacher's mask features also call alike (threshold: SIM's
``MODEL.SIM.PAIRWISE_THRESH``); every student input then carries ``teacher_mask_feats``,
from iteration 0 (before ``START_ITER`` only the teacher's backbone and mask branch run).

Mixed supervision (``MODEL.MIXED_SUPERVISION``): an instance with a drawn mask
takes it, weight 1, in place of the teacher's pseudo mask; the box losses then
train only the instances without one.

Deviations from the reference: the teacher runs in eval mode (the reference
keeps train-mode BN) on the student's resized images (not at test resolution),
and its score is FCOS's sqrt(cls x ctrness).
"""
from typing import Dict, List

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage

from ..boxinst import BoxInst
from ...config.ranges import check_ranges
from ..teacher import TeacherStudent
from ..teacher.strong_aug import strong_photometric


@META_ARCH_REGISTRY.register()
class BoxTeacherStudent(BoxInst):
    """BoxInst whose losses may also read teacher pseudo masks and features (never GT masks)."""

    ALLOWED_LABELS = ("boxes", "pseudo_masks", "teacher_features")


@META_ARCH_REGISTRY.register()
class BoxTeacher(TeacherStudent):
    @configurable
    def __init__(self, *, student: BoxTeacherStudent, teacher: BoxTeacherStudent, momentum: float,
                 iou_thresh: float, mask_thresh: float, strong_aug: bool, use_teacher_inference: bool,
                 start_iter: int = 0, input_format: str = "BGR"):
        super().__init__(student=student, teacher=teacher, momentum=momentum,
                         use_teacher_inference=use_teacher_inference, iou_thresh=iou_thresh,
                         mask_thresh=mask_thresh, input_format=input_format)
        self.strong_aug = strong_aug
        self.start_iter = start_iter

    @classmethod
    def from_config(cls, cfg):
        check_ranges(cfg, {
            "MASK_WEIGHT": "[0, inf)", "WARMUP_ITERS": "[0, inf)", "START_ITER": "[0, inf)",
            "AFFINITY_WEIGHT": "[0, inf)", "AFFINITY_THRESH": "[0, 1]"}, prefix="MODEL.BOX_TEACHER.")
        b = cfg.MODEL.BOX_TEACHER
        return {
            **cls.teacher_config(cfg),  # first: its range check fails before the models are built
            "student": BoxTeacherStudent(cfg),
            "teacher": BoxTeacherStudent(cfg),
            "strong_aug": b.STRONG_AUG,
            "start_iter": b.START_ITER,
            "input_format": cfg.INPUT.FORMAT,
        }

    @staticmethod
    def _with_pseudo_masks(gt: Instances, masks: torch.Tensor, weights: torch.Tensor) -> Instances:
        return Instances(gt.image_size, **gt.get_fields(), gt_pseudo_masks=masks, gt_pseudo_weights=weights)

    def _unclaimed(self, x: Dict) -> Instances:
        """An input's GT instances with every box unclaimed (empty pseudo masks, weight 0; a real mask,
        weight 1, under mixed supervision)."""
        gt = x["instances"].to(self.device)
        masks, weights, _ = self.with_real_masks(gt, torch.zeros((len(gt),) + gt.image_size, device=self.device),
                                                 torch.zeros(len(gt), device=self.device))
        return self._with_pseudo_masks(gt, masks, weights)

    @torch.no_grad()
    def pseudo_label(self, batched_inputs: List[Dict]) -> List[Instances]:
        """Each image's GT instances plus ``gt_pseudo_masks`` (G, H, W) and ``gt_pseudo_weights`` (G,),
        from the teacher's predictions at the input resolution."""
        return [self._with_pseudo_masks(gt, masks, weights)
                for gt, masks, weights, _ in self.claimed_masks(batched_inputs)]

    @torch.no_grad()
    def student_inputs(self, batched_inputs: List[Dict]) -> List[Dict]:
        """Pseudo-labelled GT instances (all unclaimed before ``start_iter``: the pseudo-mask losses are
        off: the teacher's detections are skipped, and its features computed only if a loss reads them); the image strongly
        jittered (photometric: boxes stay); ``teacher_mask_feats`` when a loss reads them."""
        with_feats = self.student_reads_teacher_features
        teacher_feats = [None] * len(batched_inputs)
        if get_event_storage().iter < self.start_iter:
            labelled = [self._unclaimed(x) for x in batched_inputs]
            if with_feats:
                teacher_feats = self.teacher_mask_features(batched_inputs)
        else:
            claimed = self.claimed_masks(batched_inputs, with_mask_feats=with_feats)
            labelled = [self._with_pseudo_masks(gt, masks, weights) for gt, masks, weights, _ in claimed]
            if with_feats:
                teacher_feats = [out["mask_feats"] for *_, out in claimed]
        student_inputs = []
        for x, inst, feats in zip(batched_inputs, labelled, teacher_feats):
            image = strong_photometric(x["image"], self.input_format) if self.strong_aug else x["image"]
            student_input = dict(x, image=image, instances=inst)
            if feats is not None:
                student_input["teacher_mask_feats"] = feats
            student_inputs.append(student_input)
        return student_inputs
