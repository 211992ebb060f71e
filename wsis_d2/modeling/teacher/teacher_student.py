"""A student detector and its EMA teacher, as one meta-architecture (BoxTeacher, SIM).

Training: the teacher predicts on each batch's images (eval mode, no
gradients, at the input resolution, with soft masks and, when asked, its mask
features); a subclass turns that into the student's inputs
(:meth:`TeacherStudent.student_inputs`: pseudo masks, augmentation), and the
student's losses are the model's losses. Inference: the teacher's (default)
or the student's predictions. Under ``MODEL.MIXED_SUPERVISION`` an instance with a
drawn mask gets that mask, weight 1, in place of the teacher's pseudo mask
(:meth:`TeacherStudent.with_real_masks`). Subclasses also expose ``pseudo_label``, which
:class:`~wsis_d2.evaluation.pseudo_masks.PseudoMaskQualityHook` measures.
"""
from typing import Dict, List

import torch
from detectron2.structures import BitMasks, Instances, PolygonMasks
from torch import nn

from ...config.ranges import check_ranges
from .ema import MeanTeacher, ema_momentum
from .pseudo_labels import assign_pseudo_masks


class TeacherStudent(nn.Module):
    """
    Args:
        student, teacher: two fresh models of one CondInst-style architecture
            (the teacher starts as a copy of the student).
        momentum: EMA momentum of the teacher (``MODEL.TEACHER.MOMENTUM``).
        use_teacher_inference: predict with the teacher, else the student (``MODEL.TEACHER.USE_FOR_INFERENCE``).
        iou_thresh, mask_thresh: how teacher predictions claim GT boxes (:func:`assign_pseudo_masks`;
            ``MODEL.TEACHER.IOU_THRESH`` / ``MASK_THRESH``).
        input_format: channel order of the input images.
    """

    def __init__(self, *, student: nn.Module, teacher: nn.Module, momentum: float, use_teacher_inference: bool,
                 iou_thresh: float = 0.5, mask_thresh: float = 0.5, input_format: str = "BGR"):
        super().__init__()
        self.student = student
        self.teacher = MeanTeacher(teacher)
        self.teacher.copy_from(student)
        self.momentum = momentum
        self.use_teacher_inference = use_teacher_inference
        self.iou_thresh = iou_thresh
        self.mask_thresh = mask_thresh
        self.input_format = input_format

    @staticmethod
    def teacher_config(cfg) -> Dict:
        """The keyword arguments of :meth:`__init__` that ``MODEL.TEACHER`` holds (range-checked), for a
        subclass's ``from_config``."""
        check_ranges(cfg, {"MOMENTUM": "[0, 1]", "IOU_THRESH": "[0, 1]", "MASK_THRESH": "[0, 1]"},
                     prefix="MODEL.TEACHER.")
        t = cfg.MODEL.TEACHER
        return {"momentum": t.MOMENTUM, "iou_thresh": t.IOU_THRESH, "mask_thresh": t.MASK_THRESH,
                "use_teacher_inference": t.USE_FOR_INFERENCE}

    @property
    def device(self):
        return self.student.device

    @property
    def student_reads_teacher_features(self) -> bool:
        """Whether one of the student's mask losses reads the teacher's mask features
        (``teacher_mask_feats`` in every student input, e.g. ``TeacherFeaturePairwiseLoss``)."""
        return any("teacher_features" in loss.LABELS for loss in self.student.mask_losses)

    def update_teacher(self, iteration: int) -> None:
        """Called after each optimiser step (``EMAUpdateHook``)."""
        self.teacher.update(self.student, ema_momentum(iteration, self.momentum))

    @torch.no_grad()
    def teacher_predictions(self, batched_inputs: List[Dict], with_mask_feats: bool = False) -> List[Dict]:
        """The teacher's outputs at the input resolution: ``instances`` with ``pred_mask_probs`` (D, H, W)
        and, with ``with_mask_feats``, ``mask_feats`` (C, Hp/t, Wp/t) of the padded input at the mask
        branch's stride t."""
        inputs = [{"image": x["image"], "height": x["image"].shape[-2], "width": x["image"].shape[-1]}
                  for x in batched_inputs]
        model = self.teacher.model
        # soft masks and features only here: evaluation outputs stay as small as CondInst's
        model.keep_mask_probs, model.keep_mask_feats = True, with_mask_feats
        try:
            return self.teacher(inputs)
        finally:
            model.keep_mask_probs, model.keep_mask_feats = False, False

    @torch.no_grad()
    def teacher_mask_features(self, batched_inputs: List[Dict]) -> List[torch.Tensor]:
        """The teacher's mask features (C, Hp/t, Wp/t) of each padded input, as :meth:`teacher_predictions`
        gives them, without its detections and masks."""
        return list(self.teacher.model.encode(batched_inputs)[2])

    def with_real_masks(self, gt: Instances, masks: torch.Tensor,
                        weights: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor, torch.Tensor]":
        """Mixed supervision: (pseudo masks (G, H, W) with each real GT mask in place of its pseudo
        mask, weights (G,) with 1 there, (G,) bool: the instance has a real mask). Unchanged (and no
        instance real) when the student is not mixed-supervised or the image has no masks."""
        real = torch.zeros(len(gt), dtype=torch.bool, device=masks.device)
        if not getattr(self.student, "mixed_supervision", False) or len(gt) == 0 or not gt.has("gt_masks"):
            return masks, weights, real
        gt_masks = gt.gt_masks
        if isinstance(gt_masks, PolygonMasks):
            gt_masks = BitMasks.from_polygon_masks(gt_masks, *gt.image_size)
        gt_masks = (gt_masks.tensor if isinstance(gt_masks, BitMasks) else gt_masks).to(masks)
        real = gt.gt_has_mask.to(masks.device) if gt.has("gt_has_mask") else ~real
        masks = torch.where(real[:, None, None], gt_masks, masks)
        return masks, torch.where(real, torch.ones_like(weights), weights), real

    @torch.no_grad()
    def claimed_masks(self, batched_inputs: List[Dict], with_mask_feats: bool = False) -> List[tuple]:
        """Per image: (GT instances on the model's device, the teacher masks that claimed its boxes
        (G, H, W), their weights (G,) (0: unclaimed), the teacher's output dict); under mixed supervision
        real GT masks replace the teacher's (:meth:`with_real_masks`)."""
        claimed = []
        for x, out in zip(batched_inputs, self.teacher_predictions(batched_inputs, with_mask_feats)):
            gt = x["instances"].to(self.device)
            pred = out["instances"]
            masks, weights = assign_pseudo_masks(gt.gt_boxes.tensor, pred.pred_boxes.tensor, pred.scores,
                                                 pred.pred_mask_probs, self.iou_thresh, self.mask_thresh)
            masks, weights, _ = self.with_real_masks(gt, masks, weights)
            claimed.append((gt, masks, weights, out))
        return claimed

    def student_inputs(self, batched_inputs: List[Dict]) -> List[Dict]:
        """The student's training inputs for this batch (pseudo-labelled, augmented)."""
        raise NotImplementedError

    def forward(self, batched_inputs: List[Dict]):
        """Training: the student's losses on :meth:`student_inputs`; inference: the teacher's (or the
        student's) predictions, as CondInst returns them."""
        if not self.training:
            return (self.teacher if self.use_teacher_inference else self.student)(batched_inputs)
        for x in batched_inputs:
            if "instances" not in x:
                raise ValueError(f"{type(self).__name__} needs 'instances' (GT boxes) in every training input")
        return self.student(self.student_inputs(batched_inputs))
