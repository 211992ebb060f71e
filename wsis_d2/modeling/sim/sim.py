"""SIM (Li, Qi, Lu, Wang, Liu, Yang, Jia, "SIM: Semantic-aware Instance Mask Generation for
Box-Supervised Instance Segmentation", CVPR 2023).

A BoxInst student (projection + colour-pairwise losses on every GT box) and its
EMA teacher. Each step the teacher predicts on the plain images; its
predictions claim GT boxes as in BoxTeacher (IoU >= 0.5, mask-aware rank), and
the claimed masks' confident pixels (> 0.7) update class-wise prototypes of
the teacher's mask features (:mod:`.prototypes`). From ``START_ITER`` on, each
claimed box gets a semantic-aware pseudo label mixing the teacher mask with
its class's prototype map (:mod:`.semantic_masks`), trained with
``SemanticPseudoMaskLoss``; and objects of earlier images are pasted in
(:mod:`.copy_paste`). Every student input also carries the teacher's mask
features of the image (before pasting: the teacher runs once per batch),
``teacher_mask_feats``, which ``TeacherFeaturePairwiseLoss``
(:mod:`.feature_pairwise`, the reference's pairwise term) multiplies into the
colour affinity. Evaluation uses the teacher.

Mixed supervision (``MODEL.MIXED_SUPERVISION``): an instance with a drawn mask
gets it as its pseudo label (every pixel labelled, weight 1) instead of the
semantic-aware one; the box losses still train every box (the student's
instances carry no mask flags).

Deviations from the reference: the teacher mask of a box is the matched
prediction's (the reference averages the masks of the box's FCOS positives);
on a pasted object the pairwise term's feature factor is the teacher's view of
what the paste covers;
the teacher runs in eval mode; copy-paste
samples objects by their pseudo-label weight sqrt(sqrt(cls) x mask score)
(BoxTeacher's confidence) in place of the teacher's score.
"""
import random
from typing import Dict, List

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage

from ..boxinst import BoxInst
from ...data.pixels import box_pixel_ranges
from ...config.ranges import check_increasing_pair, check_ranges
from ..teacher import TeacherStudent
from .copy_paste import ObjectBank, paste_objects
from .prototypes import ClassPrototypes
from .semantic_masks import semantic_pseudo_label


@META_ARCH_REGISTRY.register()
class SIMStudent(BoxInst):
    """BoxInst whose losses may also read teacher pseudo masks and features (never GT masks)."""

    ALLOWED_LABELS = ("boxes", "pseudo_masks", "teacher_features")


def _to_image_grid(maps: torch.Tensor, stride: int, height: int, width: int) -> torch.Tensor:
    """(n, h, w) maps on the padded input at ``stride`` -> (n, height, width) input pixels
    (half-pixel bilinear: cell j's value sits at input pixel stride * (j + 1/2))."""
    up = F.interpolate(maps[:, None], scale_factor=stride, mode="bilinear", align_corners=False)
    return up[:, 0, :height, :width]


def _to_feature_grid(maps: torch.Tensor, stride: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """(n, H, W) input-pixel maps -> (n, grid_h, grid_w) cell averages on the padded input at ``stride``."""
    padded = F.pad(maps, (0, grid_w * stride - maps.shape[-1], 0, grid_h * stride - maps.shape[-2]))
    return F.avg_pool2d(padded[:, None], kernel_size=stride, stride=stride)[:, 0]


@META_ARCH_REGISTRY.register()
class SIM(TeacherStudent):
    @configurable
    def __init__(self, *, student: SIMStudent, teacher: SIMStudent, prototypes: ClassPrototypes, momentum: float,
                 use_teacher_inference: bool, iou_thresh: float, mask_thresh: float, confident_thresh: float,
                 start_iter: int, semantic_weight: float, fg_range, bg_thresh: float, copy_paste_prob: float,
                 bank_size: int, max_paste: int, score_power: float, min_paste_area: int, max_occlusion: float,
                 input_format: str = "BGR"):
        super().__init__(student=student, teacher=teacher, momentum=momentum,
                         use_teacher_inference=use_teacher_inference, iou_thresh=iou_thresh,
                         mask_thresh=mask_thresh, input_format=input_format)
        self.prototypes = prototypes
        self.confident_thresh = confident_thresh
        self.start_iter = start_iter
        self.semantic_weight = semantic_weight
        self.fg_range = tuple(fg_range)
        self.bg_thresh = bg_thresh
        self.copy_paste_prob = copy_paste_prob
        self.bank = ObjectBank(bank_size, min_paste_area)
        self.max_paste = max_paste
        self.score_power = score_power
        self.min_paste_area = min_paste_area
        self.max_occlusion = max_occlusion

    @classmethod
    def from_config(cls, cfg):
        check_ranges(cfg, {
            "CONFIDENT_THRESH": "[0, 1]",
            "NUM_PROTOTYPES": "[1, inf)", "PROTOTYPE_MOMENTUM": "[0, 1]", "SINKHORN_EPSILON": "(0, inf)",
            "SINKHORN_ITERS": "[1, inf)", "GUMBEL_TAU": "(0, inf)", "START_ITER": "[0, inf)",
            "SEMANTIC_WEIGHT": "[0, 1]", "BG_THRESH": "[0, 1]", "LOSS_WEIGHT": "[0, inf)",
            "PASTE_DICE_WEIGHT": "[0, inf)", "RAMP_ITERS": "[0, inf)", "FOCAL_ALPHA": "[-1, 1]",
            "FOCAL_GAMMA": "[0, inf)", "PAIRWISE_THRESH": "[0, 1]", "COPY_PASTE.PROB": "[0, 1]",
            "COPY_PASTE.BANK_SIZE": "[1, inf)", "COPY_PASTE.MAX_OBJECTS": "[1, inf)",
            "COPY_PASTE.SCORE_POWER": "[0, inf)", "COPY_PASTE.MIN_AREA": "[0, inf)",
            "COPY_PASTE.MAX_OCCLUSION": "[0, 1]"}, prefix="MODEL.SIM.")
        check_increasing_pair(cfg, "MODEL.SIM.FG_THRESH_RANGE")
        s = cfg.MODEL.SIM
        return {
            **cls.teacher_config(cfg),  # first: its range check fails before the models are built
            "student": SIMStudent(cfg),
            "teacher": SIMStudent(cfg),
            "prototypes": ClassPrototypes(cfg.MODEL.FCOS.NUM_CLASSES, s.NUM_PROTOTYPES,
                                          cfg.MODEL.CONDINST.MASK_BRANCH.OUT_CHANNELS, s.PROTOTYPE_MOMENTUM,
                                          s.SINKHORN_EPSILON, s.SINKHORN_ITERS, s.GUMBEL_TAU),
            "confident_thresh": s.CONFIDENT_THRESH,
            "start_iter": s.START_ITER,
            "semantic_weight": s.SEMANTIC_WEIGHT,
            "fg_range": s.FG_THRESH_RANGE,
            "bg_thresh": s.BG_THRESH,
            "copy_paste_prob": s.COPY_PASTE.PROB,
            "bank_size": s.COPY_PASTE.BANK_SIZE,
            "max_paste": s.COPY_PASTE.MAX_OBJECTS,
            "score_power": s.COPY_PASTE.SCORE_POWER,
            "min_paste_area": s.COPY_PASTE.MIN_AREA,
            "max_occlusion": s.COPY_PASTE.MAX_OCCLUSION,
            "input_format": cfg.INPUT.FORMAT,
        }

    def _teacher_masks(self, batched_inputs: List[Dict]):
        """Per image: (GT instances, claimed teacher masks (G, H, W), weights (G,), mask features (C, h, w))."""
        return [(gt, masks, weights, out["mask_feats"])
                for gt, masks, weights, out in self.claimed_masks(batched_inputs, with_mask_feats=True)]

    @property
    def feature_stride(self) -> int:
        return self.teacher.model.mask_branch.out_stride

    def _semantic_labels(self, gt: Instances, masks: torch.Tensor, weights: torch.Tensor,
                         feats: torch.Tensor) -> Instances:
        """Pseudo labels of the claimed (weight > 0) boxes, on each box's crop; outside its box a box's
        label is background; unclaimed boxes get none (all unlabelled)."""
        h, w = gt.image_size
        foreground = torch.zeros((len(gt), h, w), dtype=torch.bool, device=self.device)
        labelled = torch.zeros_like(foreground)
        semantic_of_class = {}  # one full-image map per class present
        _, _, real = self.with_real_masks(gt, masks, weights)
        # mixed supervision: a drawn mask (already in ``masks``) is its own label, every pixel known
        foreground[real] = masks[real] > 0.5
        labelled[real] = True
        for g in torch.nonzero((weights > 0) & ~real).flatten().tolist():
            c = int(gt.gt_classes[g])
            if c not in semantic_of_class:
                semantic = self.prototypes.semantic_map(feats[None], gt.gt_classes[g: g + 1])
                semantic_of_class[c] = _to_image_grid(semantic, self.feature_stride, h, w)[0]
            (r0, r1), (c0, c1) = box_pixel_ranges(gt.gt_boxes.tensor[g].tolist(), h, w)
            fg, known = semantic_pseudo_label(masks[g, r0:r1, c0:c1], semantic_of_class[c][r0:r1, c0:c1],
                                              self.semantic_weight, self.fg_range, self.bg_thresh)
            labelled[g] = True
            labelled[g, r0:r1, c0:c1] = known
            foreground[g, r0:r1, c0:c1] = fg
        return Instances(gt.image_size, gt_boxes=gt.gt_boxes, gt_classes=gt.gt_classes,
                         gt_pseudo_masks=foreground, gt_pseudo_valid=labelled, gt_pseudo_weights=weights,
                         gt_pasted=torch.zeros(len(gt), dtype=torch.bool, device=self.device))

    @torch.no_grad()
    def pseudo_label(self, batched_inputs: List[Dict]) -> List[Instances]:
        """Each image's GT boxes with SIM's pseudo labels: ``gt_pseudo_masks`` (G, H, W) bool foreground,
        ``gt_pseudo_valid`` (G, H, W) bool labelled pixels, ``gt_pseudo_weights`` (G,) (0: box losses only).
        Changes nothing (the prototypes learn in training steps only)."""
        return [self._semantic_labels(*claimed) for claimed in self._teacher_masks(batched_inputs)]

    def _update_prototypes(self, claimed) -> None:
        features, classes = [], []
        for gt, masks, weights, feats in claimed:
            grid_h, grid_w = feats.shape[-2:]
            # a feature cell is confident when most of its pixels are
            confident = _to_feature_grid((masks > self.confident_thresh).float(), self.feature_stride,
                                         grid_h, grid_w) >= 0.5
            for g in torch.nonzero(weights > 0).flatten().tolist():
                if bool(confident[g].any()):
                    features.append(feats[:, confident[g]].t())
                    classes.append(int(gt.gt_classes[g]))
        self.prototypes.update(features, classes)  # every process, every step: it all-reduces

    @torch.no_grad()
    def student_inputs(self, batched_inputs: List[Dict]) -> List[Dict]:
        iteration = get_event_storage().iter
        claimed = self._teacher_masks(batched_inputs)
        self._update_prototypes(claimed)
        student_inputs = []
        for x, (gt, masks, weights, feats) in zip(batched_inputs, claimed):
            active = iteration >= self.start_iter
            labelled = self._semantic_labels(gt, masks, weights if active else torch.zeros_like(weights), feats)
            image = x["image"]
            if active and random.random() < self.copy_paste_prob:
                source = self.bank.sample(self.max_paste, self.score_power)
                if source is not None:
                    pasted = paste_objects(image.to(self.device), labelled, *source, self.min_paste_area,
                                           self.max_occlusion)
                    if pasted is not None:
                        image, labelled = pasted
            claimed = weights > 0
            self.bank.add(x["image"], masks[claimed] > self.confident_thresh, gt.gt_classes[claimed],
                          weights[claimed])
            student_inputs.append(dict(x, image=image, instances=labelled, teacher_mask_feats=feats))
        return student_inputs
