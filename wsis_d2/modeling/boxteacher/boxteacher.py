"""BoxTeacher (Cheng, Wang, Fang, Liu, Wang, "Boxteacher: Exploring High-Quality Pseudo Labels for
Box-supervised Instance Segmentation", CVPR 2023).

A student BoxInst learns from the GT boxes (projection + colour-pairwise
losses) and from the pseudo masks of its own EMA teacher: each training batch,
the teacher predicts on the plain images, its predictions claim GT boxes
(:func:`~wsis_d2.modeling.teacher.assign_pseudo_masks`: IoU >= 0.5, ranked by
mask-aware score), and the student, on a strongly jittered copy of the images,
gets ``PseudoMaskLoss`` (noise-aware weighted dice) and ``PseudoAffinityLoss``
(noise-reduced affinity) on the claimed boxes, from ``START_ITER`` on (before
it the teacher is not run and the student learns from the boxes alone).
Evaluation uses the teacher by default.

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
from ..teacher import TeacherStudent
from ..teacher.strong_aug import strong_photometric


@META_ARCH_REGISTRY.register()
class BoxTeacherStudent(BoxInst):
    """BoxInst whose losses may also read teacher pseudo masks (never GT masks)."""

    ALLOWED_LABELS = ("boxes", "pseudo_masks")


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
        b = cfg.MODEL.BOX_TEACHER
        return {
            "student": BoxTeacherStudent(cfg),
            "teacher": BoxTeacherStudent(cfg),
            "momentum": b.MOMENTUM,
            "iou_thresh": b.IOU_THRESH,
            "mask_thresh": b.MASK_THRESH,
            "strong_aug": b.STRONG_AUG,
            "use_teacher_inference": b.USE_TEACHER_INFERENCE,
            "start_iter": b.START_ITER,
            "input_format": cfg.INPUT.FORMAT,
        }

    @torch.no_grad()
    def pseudo_label(self, batched_inputs: List[Dict]) -> List[Instances]:
        """Each image's GT instances plus ``gt_pseudo_masks`` (G, H, W) and ``gt_pseudo_weights`` (G,),
        from the teacher's predictions at the input resolution."""
        labelled = []
        for gt, masks, weights, _ in self.claimed_masks(batched_inputs):
            fields = dict(gt.get_fields(), gt_pseudo_masks=masks, gt_pseudo_weights=weights)
            labelled.append(Instances(gt.image_size, **fields))
        return labelled

    def unclaimed(self, batched_inputs: List[Dict]) -> List[Instances]:
        """Each image's GT instances with every box unclaimed (empty pseudo masks, weight 0)."""
        labelled = []
        for x in batched_inputs:
            gt = x["instances"].to(self.device)
            labelled.append(Instances(gt.image_size, **gt.get_fields(),
                                      gt_pseudo_masks=torch.zeros((len(gt),) + gt.image_size, device=self.device),
                                      gt_pseudo_weights=torch.zeros(len(gt), device=self.device)))
        return labelled

    def student_inputs(self, batched_inputs: List[Dict]) -> List[Dict]:
        """Pseudo-labelled GT instances (all unclaimed before ``start_iter``: the pseudo-mask losses
        are off, so the teacher's pass is skipped); the image strongly jittered (photometric: boxes stay)."""
        early = get_event_storage().iter < self.start_iter
        labelled = self.unclaimed(batched_inputs) if early else self.pseudo_label(batched_inputs)
        student_inputs = []
        for x, inst in zip(batched_inputs, labelled):
            image = strong_photometric(x["image"], self.input_format) if self.strong_aug else x["image"]
            student_inputs.append(dict(x, image=image, instances=inst))
        return student_inputs
