"""Box-supervised Mask R-CNN: BoxInst's losses computed in each RoI's frame.

None of the reference repositories ships this; it shows that the registered
weak mask losses serve any mask head. detectron2's Mask R-CNN predicts M x M
mask logits per RoI; here they are trained from the matched GT box alone:

- ``ProjectionLoss``: the GT box is mapped into the RoI's M x M grid and the
  logits' projections must match its projections;
- ``PairwiseColorLoss``: the image's LAB colours are sampled with ROIAlign on
  the same grid, extended by a context ring of ``c`` cells (the reach of an
  edge) around the RoI, and the colour graph is built there. Context cells
  outside the GT box are known background (a fixed, very negative logit), so
  an edge from a cell inside the box to similar-coloured background outside it
  pulls that cell to background, as the image border of BoxInst's full-image
  graph does. Context cells inside the GT box, or outside the image (no colour
  there), are unknown: their edges do not count. Without that ring, the
  box-filled mask satisfies both losses.

``BoxSupervisedROIHeads`` attaches each sampled proposal's LAB colours
(``roi_lab``) before the mask head runs; ``BoxSupervisedMaskRCNNHead`` is
``MaskRCNNConvUpsampleHead`` with those losses instead of the mask BCE.
Inference is detectron2's, unchanged. ``MixedMaskRCNNHead`` adds mask-reading losses for
mixed supervision per object (:mod:`wsis_d2.modeling.losses.per_object`).

Asked to (``record_training_masks``, set by the trainer's picture hook), the mask head keeps a few
foreground RoIs of the batch's first image with foreground (:func:`roi_training_mask_snapshot`), in
the format of :func:`~wsis_d2.modeling.condinst.snapshot.training_mask_snapshot`: each RoI's M x M
mask probabilities pasted into the image at its proposal box. ``BoxSupervisedROIHeads`` hands it the
image; under detectron2's ``StandardROIHeads`` it has none and the picture's image panel is black.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import ShapeSpec, cat
from detectron2.layers.mask_ops import _do_paste_mask
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, ROI_MASK_HEAD_REGISTRY, StandardROIHeads
from detectron2.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead, mask_rcnn_inference
from detectron2.structures import BitMasks, ImageList, Instances, pairwise_iou
from detectron2.utils.events import get_event_storage
from torchvision.ops import roi_align

from ..losses import MaskLossInputs, build_mask_losses
from ..losses.box_targets import box_masks
from ..losses.inputs import pad_points
from ..losses.pairwise import color_similarity, rgb_to_lab, to_rgb, valid_edges
from ..losses.per_object import apply_mask_losses


# Logit given to context cells known to be background (sigmoid ~ 1e-13).
BACKGROUND_LOGIT = -30.0


class RoIFrameInputs(MaskLossInputs):
    """Per-RoI logits on an M x M grid (stride 1 in grid cells) covering each proposal box.

    Args:
        proposal_boxes, gt_boxes: (n, 4) XYXY in image pixels.
        resolution: M.
        roi_lab: (n, 3, M + 2c, M + 2c) LAB colours sampled on each RoI's grid extended by
            c context cells on every side (colour losses only), with
        roi_in_image: (n, 1, M + 2c, M + 2c) bool, cell centre inside the image (default: all).
        point_coords: (n, P, 2) the matched GT's labelled points in image pixels, with
        point_labels: (n, P) (point losses only).
        gt_mask_targets: (n, M, M) the matched GT masks cropped to each proposal box (mask losses only).
        has_mask, has_points: (n,) bool, per-object supervision (default: every RoI has masks / points
            when they are given).
    """

    def __init__(self, proposal_boxes: torch.Tensor, gt_boxes: torch.Tensor, resolution: int,
                 roi_lab: torch.Tensor = None, roi_in_image: torch.Tensor = None,
                 point_coords: torch.Tensor = None, point_labels: torch.Tensor = None, iteration: int = 0,
                 gt_mask_targets: torch.Tensor = None, has_mask: torch.Tensor = None,
                 has_points: torch.Tensor = None):
        self.proposal_boxes = proposal_boxes
        self.gt_boxes = gt_boxes
        self.resolution = resolution
        self.roi_lab = roi_lab
        self.roi_in_image = roi_in_image
        self.context = 0 if roi_lab is None else (roi_lab.shape[-1] - resolution) // 2
        self.point_coords = point_coords
        self.point_labels = point_labels
        self.stride = 1
        self.iteration = iteration
        self.gt_mask_targets = gt_mask_targets
        self.has_mask = has_mask
        self.has_point = has_points

    def __len__(self):
        return len(self.gt_boxes)

    def gt_masks(self) -> torch.Tensor:
        if self.gt_mask_targets is None:
            raise ValueError("this mask loss needs GT masks, but the data view has none "
                             "(use a box/point loss, or a dataset view with masks)")
        return self.gt_mask_targets[:, None].float()

    def has_masks(self) -> torch.Tensor:
        if self.has_mask is not None:
            return self.has_mask
        return torch.full((len(self),), self.gt_mask_targets is not None, dtype=torch.bool,
                          device=self.gt_boxes.device)

    def has_points(self) -> torch.Tensor:
        if self.has_point is not None:
            return self.has_point
        return torch.full((len(self),), self.point_coords is not None, dtype=torch.bool,
                          device=self.gt_boxes.device)

    def subset(self, keep: torch.Tensor) -> "RoIFrameInputs":
        def pick(x):
            return None if x is None else x[keep]
        return RoIFrameInputs(self.proposal_boxes[keep], self.gt_boxes[keep], self.resolution, pick(self.roi_lab),
                              pick(self.roi_in_image), pick(self.point_coords), pick(self.point_labels),
                              self.iteration, pick(self.gt_mask_targets), pick(self.has_mask), pick(self.has_point))

    def _to_unit_roi(self, xy: torch.Tensor) -> torch.Tensor:
        """(n, K, 2) image pixels -> each RoI's [0, 1]^2 frame."""
        x0, y0, x1, y1 = self.proposal_boxes[:, None].unbind(dim=2)
        origin = torch.stack([x0, y0], dim=2)
        size = torch.stack([(x1 - x0), (y1 - y0)], dim=2).clamp(min=1e-3)
        return (xy - origin) / size

    def _gt_box_cells(self, context: int) -> torch.Tensor:
        """(n, 4) GT boxes in cells of the grid extended by ``context`` cells, clipped to it."""
        m = self.resolution
        cells = self._to_unit_roi(self.gt_boxes.view(-1, 2, 2)).view(-1, 4) * m + context
        return cells.clamp(min=0, max=m + 2 * context)

    def boxes(self) -> torch.Tensor:
        return self._gt_box_cells(0)

    def points(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Points outside the proposal box are ignored: the RoI's logits do not see them."""
        if self.point_coords is None:
            raise ValueError("this mask loss needs labelled points, but the data view has none "
                             "(use a point view such as shapes_point)")
        coords = self._to_unit_roi(self.point_coords)
        inside = ((coords >= 0) & (coords <= 1)).all(dim=2)
        return coords, torch.where(inside, self.point_labels, torch.full_like(self.point_labels, -1.0))

    def _in_gt_box(self) -> torch.Tensor:
        """(n, 1, M + 2c, M + 2c) bool: cell of the extended grid mostly inside the GT box."""
        g = self.resolution + 2 * self.context
        return box_masks(self._gt_box_cells(self.context), g, g, 1)[:, None] >= 0.5

    def graph_logits(self, mask_logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        c = self.context
        return F.pad(mask_logits, (c, c, c, c), value=BACKGROUND_LOGIT), self._in_gt_box()

    def color_graph(self, size: int, dilation: int,
                    bottom_pixels_removed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
        """On the extended grid: cells of the RoI and context cells outside the GT box (and inside
        the image) take part; ``bottom_pixels_removed`` is not applied to a RoI's grid."""
        if self.roi_lab is None:
            raise ValueError("colour losses in a RoI head need MODEL.ROI_HEADS.NAME BoxSupervisedROIHeads "
                             "(it samples each RoI's colours)")
        c, m = self.context, self.resolution
        known = ~self._in_gt_box()
        known[:, :, c: c + m, c: c + m] = True
        if self.roi_in_image is not None:
            known &= self.roi_in_image
        return color_similarity(self.roi_lab, size, dilation), valid_edges(known, size, dilation)


def _cat_colors(instances: List[Instances]):
    """Each RoI's (LAB colours, cells inside the image) over the batch, or (None, None) when
    they were not sampled."""
    if not instances or not all(inst.has("roi_lab") for inst in instances):
        return None, None
    return cat([inst.roi_lab for inst in instances]), cat([inst.roi_in_image for inst in instances])


def _flags(instances: List[Instances], field: str, default_from: str) -> torch.Tensor:
    """(R,) bool per-object flag ``field`` of the RoIs' matched GTs (an image without it: all or none,
    by whether it has ``default_from``)."""
    return cat([inst.get(field).bool() if inst.has(field) else
                torch.full((len(inst),), inst.has(default_from), dtype=torch.bool, device=inst.gt_boxes.device)
                for inst in instances])


def _mask_targets(instances: List[Instances], resolution: int):
    """(R, M, M) each RoI's matched GT mask cropped to its proposal box (detectron2's ``crop_and_resize``),
    zeros where its image has no masks (not a label: its flag says so); None when no image has masks."""
    if not any(inst.has("gt_masks") for inst in instances):
        return None
    device = instances[0].proposal_boxes.tensor.device
    return cat([inst.gt_masks.crop_and_resize(inst.proposal_boxes.tensor, resolution).to(device)
                if inst.has("gt_masks") else torch.zeros((len(inst), resolution, resolution), device=device)
                for inst in instances]).float()


def _cat_points(instances: List[Instances], fill_missing: bool = False):
    """(coords (R, P, 2), labels (R, P)) of the RoIs' matched GTs, or (None, None) when a
    RoI's image has no points (images without foreground RoIs contribute nothing); with
    ``fill_missing`` (mixed supervision) such an image's RoIs get ignored (-1) points instead."""
    with_fg = [inst for inst in instances if len(inst)]
    if not with_fg or not any(inst.has("gt_point_coords") for inst in with_fg):
        return None, None
    if not all(inst.has("gt_point_coords") for inst in with_fg):
        if not fill_missing:
            return None, None  # one kind everywhere: a point loss says the points are missing
        device = with_fg[0].gt_boxes.device
        coords = [inst.gt_point_coords if inst.has("gt_point_coords") else torch.zeros((len(inst), 1, 2), device=device)
                  for inst in with_fg]
        labels = [inst.gt_point_labels if inst.has("gt_point_coords") else torch.full((len(inst), 1), -1.0, device=device)
                  for inst in with_fg]
    else:
        coords, labels = [inst.gt_point_coords for inst in with_fg], [inst.gt_point_labels for inst in with_fg]
    coords, labels = pad_points(coords, labels)
    return cat(coords), cat(labels)


def roi_training_mask_snapshot(instances: List[Instances], logits: torch.Tensor,
                               raw_images: Optional[torch.Tensor], input_format: str,
                               max_instances: int = 4) -> Dict:
    """At most ``max_instances`` foreground RoIs of the first image that has any, one per GT box (the
    RoI whose proposal overlaps it most), in :func:`training_mask_snapshot`'s format (``stride`` 1).

    Args:
        instances: the images' foreground RoIs (``proposal_boxes``, ``gt_boxes``), images without any included.
        logits: (R, 1, M, M) the mask logits of the RoIs of ``instances``' non-empty images, in order.
        raw_images: (N, 3, Hp, Wp) the padded batch in pixel values (``input_format`` order), or None
            (a black image of each image's size).

    Returns:
        ``images`` (one (3, h, w) uint8 or none), ``image_index``, ``boxes`` (k, 4) the GT boxes,
        ``mask_probs`` (k, h, w) pasted at the proposal boxes, ``stride`` 1, ``format``; CPU, detached.
    """
    with torch.no_grad():
        first = next((i for i, inst in enumerate(instances) if len(inst)), None)
        if first is None:
            return {"images": [], "image_index": torch.zeros((0,), dtype=torch.long), "boxes": torch.zeros((0, 4)),
                    "mask_probs": torch.zeros((0, 1, 1)), "stride": 1, "format": input_format}
        inst = instances[first]
        start = sum(len(i) for i in instances[:first])
        h, w = inst.image_size
        gt = inst.gt_boxes.tensor
        unique, which = torch.unique(gt, dim=0, return_inverse=True)
        iou = pairwise_iou(inst.proposal_boxes, inst.gt_boxes).diagonal()
        best = [int(torch.nonzero(which == u)[iou[which == u].argmax()]) for u in range(len(unique))]
        chosen = torch.tensor(sorted(best)[:max_instances], dtype=torch.long, device=gt.device)
        probs = logits[start + chosen, 0].detach().float().sigmoid()
        pasted, _ = _do_paste_mask(probs[:, None], inst.proposal_boxes.tensor[chosen].float(), h, w, skip_empty=False)
        if raw_images is None:
            image = torch.zeros((3, h, w), dtype=torch.uint8)
        else:
            image = raw_images[first, :, :h, :w].detach().clamp(0, 255).round().to(torch.uint8).cpu()
        return {
            "images": [image],
            "image_index": torch.zeros((len(chosen),), dtype=torch.long),
            "boxes": gt[chosen].detach().float().cpu(),
            "mask_probs": pasted.float().cpu(),
            "stride": 1,
            "format": input_format,
        }


@ROI_HEADS_REGISTRY.register()
class BoxSupervisedROIHeads(StandardROIHeads):
    """``StandardROIHeads`` that, in training, gives each sampled proposal its RoI's LAB colours
    (``roi_lab``: (R, 3, M + 2c, M + 2c), the mask grid plus c context cells per side)."""

    @configurable
    def __init__(self, *, pixel_mean: List[float], pixel_std: List[float], input_format: str,
                 mask_resolution: int, context_cells: int, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, -1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, -1, 1, 1), False)
        self.input_format = input_format
        self.mask_resolution = mask_resolution
        self.context_cells = context_cells

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        ret = super().from_config(cfg, input_shape)
        ret.update(pixel_mean=cfg.MODEL.PIXEL_MEAN, pixel_std=cfg.MODEL.PIXEL_STD, input_format=cfg.INPUT.FORMAT,
                   mask_resolution=2 * cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION,
                   # an edge reaches (SIZE // 2) * DILATION cells: the context ring's width
                   context_cells=(cfg.MODEL.BOXINST.PAIRWISE.SIZE // 2) * cfg.MODEL.BOXINST.PAIRWISE.DILATION)
        return ret

    def _attach_roi_colors(self, images: ImageList, proposals: List[Instances]) -> None:
        rgb = to_rgb(images.tensor * self.pixel_std + self.pixel_mean, self.input_format) / 255.0
        lab = rgb_to_lab(rgb.clamp(0, 1))
        m, c = self.mask_resolution, self.context_cells
        g = m + 2 * c
        boxes = []
        for p, (img_h, img_w) in zip(proposals, images.image_sizes):
            # grow each box by c cells of its own grid on every side
            b = p.proposal_boxes.tensor
            cell = torch.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]] * 2, dim=1) / m
            grown = b + cell * cell.new_tensor([-c, -c, c, c])
            boxes.append(grown)
            # cells whose centres fall outside the image (or into batch padding) have no colour
            steps = (torch.arange(g, device=b.device, dtype=b.dtype) + 0.5) / g
            xs = grown[:, 0:1] + steps * (grown[:, 2:3] - grown[:, 0:1])
            ys = grown[:, 1:2] + steps * (grown[:, 3:4] - grown[:, 1:2])
            inside_x, inside_y = (xs >= 0) & (xs <= img_w), (ys >= 0) & (ys <= img_h)
            p.roi_in_image = (inside_y[:, :, None] & inside_x[:, None, :])[:, None]
        rois = roi_align(lab, boxes, output_size=g, spatial_scale=1.0, sampling_ratio=2, aligned=True)
        for p, colors in zip(proposals, rois.split([len(p) for p in proposals])):
            p.roi_lab = colors

    def forward(self, images: ImageList, features: Dict[str, torch.Tensor], proposals: List[Instances],
                targets: List[Instances] = None):
        if not self.training:
            return super().forward(images, features, proposals)
        if not targets:
            raise ValueError("BoxSupervisedROIHeads needs targets (GT instances) in training")
        proposals = self.label_and_sample_proposals(proposals, targets)
        self._attach_roi_colors(images, proposals)
        if getattr(self.mask_head, "record_training_masks", False):
            # the image for the head's picture of its training masks
            self.mask_head.training_images = (images.tensor * self.pixel_std + self.pixel_mean, self.input_format)
        losses = self._forward_box(features, proposals)
        losses.update(self._forward_mask(features, proposals))
        losses.update(self._forward_keypoint(features, proposals))
        return proposals, losses


@ROI_MASK_HEAD_REGISTRY.register()
class BoxSupervisedMaskRCNNHead(MaskRCNNConvUpsampleHead):
    """Mask R-CNN's conv-upsample mask head trained by ``MODEL.ROI_MASK_HEAD.MASK_LOSSES`` (boxes only).

    Needs ``BoxSupervisedROIHeads`` (for ``roi_lab``) when a colour loss is configured.
    Subclasses widen ``ALLOWED_LABELS`` (the annotations its losses may read).
    """

    ALLOWED_LABELS = ("boxes",)

    @configurable
    def __init__(self, input_shape: ShapeSpec, *, mask_losses, mixed_supervision: bool = False, **kwargs):
        super().__init__(input_shape, **kwargs)
        # a plain list: the parent is an nn.Sequential whose children are its layers
        self.mask_losses = list(mask_losses)
        self.mixed_supervision = mixed_supervision
        self.reads_masks = any("masks" in loss.LABELS for loss in self.mask_losses)
        # set by the trainer's picture hook; the training forward then fills ``training_masks``
        # (:func:`roi_training_mask_snapshot`) with the images ``training_images`` (raw batch, format) if given
        self.record_training_masks = False
        self.training_masks = None
        self.training_images = None

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        losses = build_mask_losses(cfg, cfg.MODEL.ROI_MASK_HEAD.MASK_LOSSES, allowed_labels=cls.ALLOWED_LABELS)
        for loss in losses:
            if getattr(loss, "NEEDS_FULL_IMAGE", False):
                raise ValueError(f"{type(loss).__name__} needs full-image logits; it cannot run in a RoI head")
        ret["mask_losses"] = losses
        ret["mixed_supervision"] = cfg.MODEL.MIXED_SUPERVISION
        return ret

    def forward(self, x, instances: List[Instances]):
        """
        Args:
            x: (R, C, Hr, Wr) pooled features of R foreground proposals (training) or detections.

        Returns:
            training: dict of the configured losses; inference: ``instances`` with ``pred_masks``.
        """
        x = self.layers(x)
        if not self.training:
            mask_rcnn_inference(x, instances)
            return instances
        # images without GT have no foreground RoIs, and no gt_* fields to concatenate
        with_fg = [inst for inst in instances if len(inst)]
        if not with_fg:
            self.training_images = None
            # every loss returns its zero (connected to the graph) for zero instances
            empty = RoIFrameInputs(x.new_zeros((0, 4)), x.new_zeros((0, 4)), x.shape[-1])
            return self._losses(x[:, :1], empty)
        if x.shape[1] == 1:
            logits = x
        else:
            classes = cat([inst.gt_classes for inst in with_fg])
            logits = x[torch.arange(x.shape[0], device=x.device), classes][:, None]
        mixed = self.mixed_supervision
        point_coords, point_labels = _cat_points(with_fg, fill_missing=mixed)
        roi_lab, roi_in_image = _cat_colors(with_fg)
        inputs = RoIFrameInputs(cat([inst.proposal_boxes.tensor for inst in with_fg]),
                                cat([inst.gt_boxes.tensor for inst in with_fg]), x.shape[-1],
                                roi_lab=roi_lab, roi_in_image=roi_in_image, point_coords=point_coords,
                                point_labels=point_labels, iteration=get_event_storage().iter,
                                gt_mask_targets=_mask_targets(with_fg, x.shape[-1]) if self.reads_masks else None,
                                has_mask=_flags(with_fg, "gt_has_mask", "gt_masks") if mixed else None,
                                has_points=_flags(with_fg, "gt_has_points", "gt_point_coords") if mixed else None)
        if self.record_training_masks:
            raw, input_format = self.training_images or (None, "BGR")
            self.training_masks = roi_training_mask_snapshot(instances, logits, raw, input_format)
        self.training_images = None
        return self._losses(logits, inputs)

    def _losses(self, logits: torch.Tensor, inputs: RoIFrameInputs) -> Dict[str, torch.Tensor]:
        losses = apply_mask_losses(self.mask_losses, logits, inputs, self.mixed_supervision)
        return {k: v * self.loss_weight for k, v in losses.items()}


@ROI_MASK_HEAD_REGISTRY.register()
class MixedMaskRCNNHead(BoxSupervisedMaskRCNNHead):
    """Mask R-CNN's mask head for mixed supervision per object (``MODEL.MIXED_SUPERVISION``): its
    ``MODEL.ROI_MASK_HEAD.MASK_LOSSES`` may read masks, boxes and points (e.g. ``MaskBCELoss`` on the
    objects with masks, ``ProjectionLoss`` + ``PairwiseColorLoss`` on the others, ``PointLoss`` on those
    with points), each on the RoIs of the objects that carry its labels."""

    ALLOWED_LABELS = ("masks", "boxes", "points")
