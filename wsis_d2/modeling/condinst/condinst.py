"""CondInst meta-architecture (Tian, Shen, Chen, "Conditional Convolutions for Instance Segmentation", ECCV 2020).

FCOS detects; its controller predicts, at every location, the parameters of a
tiny per-instance mask FCN (:class:`DynamicMaskHead`) applied to shared mask
features (:class:`MaskBranch`). Training computes the mask losses named in
``MODEL.CONDINST.MASK_LOSSES`` on the positives' mask logits, so the same
detector trains from masks (``dice``) or, in other configs, from weak labels.
With ``MODEL.MIXED_SUPERVISION`` each loss trains only the instances that carry
its labels (:mod:`wsis_d2.modeling.losses.per_object`): masks, boxes and points
in one dataset.
"""
from typing import Dict, List, Tuple

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import ImageList, Instances
from detectron2.utils.events import get_event_storage
from torch import nn
from torch.nn import functional as F

from ..fcos.fcos import FCOS, FCOSPositives
from ..losses import ImageFrameInputs, build_mask_losses
from ..losses.per_object import apply_mask_losses
from .dynamic_mask_head import DynamicMaskHead
from .mask_branch import MaskBranch
from .snapshot import training_mask_snapshot


def select_top_positives_per_instance(positives: FCOSPositives, gt_instances: List[Instances],
                                      topk_per_image: int) -> FCOSPositives:
    """BoxInst's sampling: per image, keep the ``topk_per_image // G`` best-scored positives of each of
    the G GT instances that have positives (scores: best class probability x centerness)."""
    keep = []
    for im in range(len(gt_instances)):
        in_image = torch.nonzero(positives.im_inds == im).squeeze(1)
        gts = positives.gt_inds[in_image].unique()
        if gts.numel() == 0:
            continue
        k = max(topk_per_image // gts.numel(), 1)
        for g in gts:
            idx = in_image[positives.gt_inds[in_image] == g]
            keep.append(idx[positives.scores[idx].topk(min(k, idx.numel())).indices])
    if not keep:
        return positives[positives.im_inds.new_zeros((0,), dtype=torch.long)]
    return positives[torch.cat(keep)]


@META_ARCH_REGISTRY.register()
class CondInst(nn.Module):
    # Annotations the configured mask losses may read (None: any). Weakly-supervised
    # subclasses narrow it, so a mask-reading loss in their config fails at build time.
    ALLOWED_LABELS = None

    @configurable
    def __init__(self, *, backbone: nn.Module, fcos: FCOS, mask_branch: MaskBranch, mask_head: DynamicMaskHead,
                 mask_losses: nn.ModuleList, pixel_mean, pixel_std, size_divisibility: int,
                 mask_out_stride: int, max_proposals: int, topk_proposals_per_im: int, mask_threshold: float,
                 input_format: str = "BGR", mixed_supervision: bool = False):
        super().__init__()
        self.backbone = backbone
        self.fcos = fcos
        self.mask_branch = mask_branch
        self.mask_head = mask_head
        self.mask_losses = mask_losses
        self.size_divisibility = size_divisibility
        if mask_branch.out_stride % mask_out_stride:
            raise ValueError(f"MODEL.CONDINST.MASK_OUT_STRIDE {mask_out_stride} must divide the mask "
                             f"branch's stride {mask_branch.out_stride}")
        self.mask_out_stride = mask_out_stride
        self.max_proposals = max_proposals
        self.topk_proposals_per_im = topk_proposals_per_im
        self.mask_threshold = mask_threshold
        self.input_format = input_format
        self.mixed_supervision = mixed_supervision
        # set by a teacher-student model: inference also returns ``pred_mask_probs`` (D, H, W) float
        # and, per image, ``mask_feats`` (C, Hp/t, Wp/t) of the padded input at the mask branch's stride t
        self.keep_mask_probs = False
        self.keep_mask_feats = False
        # set for one step by the trainer's picture hook: that step's training forward keeps
        # ``training_masks`` (:func:`training_mask_snapshot`: a few instances' image, box and mask)
        self.record_training_masks = False
        self.training_masks = None
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        c = cfg.MODEL.CONDINST
        mask_branch = MaskBranch(cfg, shapes)
        mask_head = DynamicMaskHead(c.MASK_BRANCH.OUT_CHANNELS, c.MASK_HEAD.CHANNELS, c.MASK_HEAD.NUM_LAYERS,
                                    not c.MASK_HEAD.DISABLE_REL_COORDS, cfg.MODEL.FCOS.SIZES_OF_INTEREST)
        return {
            "backbone": backbone,
            "fcos": FCOS(cfg, shapes, extra_out_channels=mask_head.num_params,
                         detach_extra_input=c.DETACH_CONTROLLER_INPUT),
            "mask_branch": mask_branch,
            "mask_head": mask_head,
            "mask_losses": build_mask_losses(cfg, c.MASK_LOSSES, cls.ALLOWED_LABELS),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "size_divisibility": c.SIZE_DIVISIBILITY,
            "mask_out_stride": c.MASK_OUT_STRIDE,
            "max_proposals": c.MAX_PROPOSALS,
            "topk_proposals_per_im": c.TOPK_PROPOSALS_PER_IM,
            "mask_threshold": c.MASK_THRESHOLD,
            "input_format": cfg.INPUT.FORMAT,
            "mixed_supervision": cfg.MODEL.MIXED_SUPERVISION,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs) -> ImageList:
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        return ImageList.from_tensors(images, self.size_divisibility)

    def encode(self, batched_inputs: List[Dict]) -> Tuple[ImageList, Dict[str, torch.Tensor], torch.Tensor]:
        """The normalised, padded batch, its FPN features and the mask branch's features (N, C, Hp/t, Wp/t)."""
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        return images, features, self.mask_branch(features)

    def mask_logits(self, mask_feats: torch.Tensor, im_inds, locations, levels, params) -> torch.Tensor:
        """(n, 1, H/s, W/s) mask logits at ``mask_out_stride`` s for n instances."""
        logits = self.mask_head(mask_feats, self.mask_branch.out_stride, im_inds, locations, levels, params)
        factor = self.mask_branch.out_stride // self.mask_out_stride
        if factor > 1:
            # half-pixel bilinear keeps the stride-s centres aligned with the stride-8 ones
            logits = F.interpolate(logits, scale_factor=factor, mode="bilinear", align_corners=False)
        return logits

    def select_positives(self, positives: FCOSPositives, gt_instances: List[Instances]) -> FCOSPositives:
        if self.topk_proposals_per_im > 0:
            return select_top_positives_per_instance(positives, gt_instances, self.topk_proposals_per_im)
        if 0 < self.max_proposals < len(positives):
            return positives[torch.randperm(len(positives), device=self.device)[: self.max_proposals]]
        return positives

    @staticmethod
    def _teacher_feats(batched_inputs: List[Dict], mask_feats: torch.Tensor):
        """(N, C, Hp/t, Wp/t) the ``teacher_mask_feats`` a teacher-student model put in every input, or None."""
        feats = [x.get("teacher_mask_feats") for x in batched_inputs]
        if all(f is None for f in feats):
            return None
        if any(f is None or f.shape != mask_feats.shape[1:] for f in feats):
            raise ValueError(f"'teacher_mask_feats' must be in every input, each of the student's mask-feature "
                             f"shape {tuple(mask_feats.shape[1:])}; got "
                             f"{[None if f is None else tuple(f.shape) for f in feats]}")
        return torch.stack(feats).to(mask_feats.device)

    def forward(self, batched_inputs: List[Dict]):
        """
        Args:
            batched_inputs: detectron2's list of dicts with ``image`` (3, H, W)
                and, in training, ``instances`` (``gt_boxes``, ``gt_classes`` and
                whatever the data view holds) and optionally ``teacher_mask_feats``
                (C, Hp/t, Wp/t), a teacher's mask features of the image (SIM).

        Returns:
            training: dict of losses; inference: ``[{"instances": Instances}]``
            with ``pred_boxes``, ``scores``, ``pred_classes``, ``pred_masks``
            (D, H, W) bool at the requested output size.
        """
        images, features, mask_feats = self.encode(batched_inputs)

        if self.training:
            for x in batched_inputs:
                if "instances" not in x:
                    raise ValueError("CondInst needs 'instances' in every training input; "
                                     "is the training set registered with annotations?")
            gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
            losses, positives = self.fcos(images, features, gt_instances)
            positives = self.select_positives(positives, gt_instances)
            logits = self.mask_logits(mask_feats, positives.im_inds, positives.locations, positives.levels,
                                      positives.top_feats)
            inputs = ImageFrameInputs(
                gt_instances, positives.im_inds, positives.gt_inds, self.mask_out_stride,
                raw_images=images.tensor * self.pixel_std + self.pixel_mean, image_format=self.input_format,
                image_sizes=images.image_sizes,
                original_heights=[x.get("height", x["image"].shape[-2]) for x in batched_inputs],
                iteration=get_event_storage().iter,
                mask_feats=mask_feats, mask_feat_stride=self.mask_branch.out_stride,
                teacher_feats=self._teacher_feats(batched_inputs, mask_feats))
            losses.update(apply_mask_losses(self.mask_losses, logits, inputs, self.mixed_supervision))
            if self.record_training_masks:
                self.training_masks = training_mask_snapshot(
                    inputs.raw_images, images.image_sizes, [g.gt_boxes.tensor for g in gt_instances],
                    positives.im_inds, positives.gt_inds, positives.scores, logits, self.mask_out_stride,
                    self.input_format)
            return losses

        detections = self.fcos(images, features)
        im_inds = torch.cat([torch.full((len(d),), i, dtype=torch.long, device=self.device)
                             for i, d in enumerate(detections)])
        logits = self.mask_logits(mask_feats, im_inds, torch.cat([d.locations for d in detections]),
                                  torch.cat([d.fpn_levels for d in detections]),
                                  torch.cat([d.top_feats for d in detections]))
        results = []
        for i, (det, x) in enumerate(zip(detections, batched_inputs)):
            out_h, out_w = x.get("height", det.image_size[0]), x.get("width", det.image_size[1])
            results.append({"instances": self.postprocess(det, logits[im_inds == i], out_h, out_w)})
            if self.keep_mask_feats:
                results[-1]["mask_feats"] = mask_feats[i]
        return results

    def postprocess(self, det: Instances, logits: torch.Tensor, out_h: int, out_w: int) -> Instances:
        """Rescale one image's detections to (out_h, out_w) and binarise its masks.

        Args:
            det: FCOS detections in the resized input frame.
            logits: (D, 1, Hp/s, Wp/s) their mask logits at stride s on the padded batch.
        """
        in_h, in_w = det.image_size
        result = Instances((out_h, out_w))
        boxes = det.pred_boxes.clone()
        boxes.scale(out_w / in_w, out_h / in_h)
        boxes.clip((out_h, out_w))
        result.pred_boxes = boxes
        result.scores = det.scores
        result.pred_classes = det.pred_classes
        if len(det) == 0:
            result.pred_masks = torch.zeros((0, out_h, out_w), dtype=torch.bool, device=self.device)
            if self.keep_mask_probs:
                result.pred_mask_probs = torch.zeros((0, out_h, out_w), device=self.device)
            return result
        probs = F.interpolate(logits.sigmoid(), scale_factor=self.mask_out_stride, mode="bilinear",
                              align_corners=False)[:, :, :in_h, :in_w]
        probs = F.interpolate(probs, size=(out_h, out_w), mode="bilinear", align_corners=False)
        result.pred_masks = probs[:, 0] > self.mask_threshold
        if self.keep_mask_probs:
            result.pred_mask_probs = probs[:, 0]
        return result
