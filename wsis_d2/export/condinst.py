"""CondInst (and every model built on it: BoxInst, BoxLevelSet, PointSup, the teacher-student students) as
one traceable module, dynamic mask head included.

:class:`CondInstExport` runs a trained :class:`~wsis_d2.modeling.condinst.CondInst`'s inference
(Tian et al., "Conditional Convolutions for Instance Segmentation", ECCV 2020) on one image with tensor
operations only, so that ``torch.jit.trace`` (and the TorchScript-based ONNX exporter) records a graph
that holds for any image size and any number of detections:

- no Python branch or loop depends on the data: the per-level score threshold and top-k take a fixed
  ``k`` over scores padded to at least ``k`` entries, NMS is torchvision's (scripted when traced, an
  ONNX ``NonMaxSuppression``), and the per-instance dynamic mask FCNs run as one batched matrix product
  over however many detections there are (the model's own :class:`DynamicMaskHead`, which is batched);
- sizes are read from tensors (``x.shape`` is traced), never turned into Python numbers.

Its outputs are plain tensors in the frame of the input image; what is left (scaling to the original
image, thresholding the masks) is the small function shipped beside the exported file
(:mod:`wsis_d2.export.postprocess`).
"""
from typing import Tuple

import torch
from detectron2.structures import ImageList
from torch import nn
from torch.nn import functional as F
from torchvision.ops import batched_nms

from ..modeling.condinst import CondInst
from ..modeling.fcos.losses import ltrb_to_boxes


def grid_locations(height: torch.Tensor, width: torch.Tensor, stride: int, device) -> torch.Tensor:
    """:func:`~wsis_d2.modeling.fcos.targets.compute_locations` with sizes that may be traced values:
    (H*W, 2) (x, y) centres of a stride-``stride`` feature map's locations, row-major."""
    xs = torch.arange(width, device=device).to(torch.float32) * stride + stride // 2
    ys = torch.arange(height, device=device).to(torch.float32) * stride + stride // 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


class CondInstExport(nn.Module):
    """One image in, detections out, as plain tensors.

    Args:
        model: a CondInst model in eval mode (its weights are shared, not copied).
    """

    def __init__(self, model: CondInst):
        super().__init__()
        self.model = model
        fcos = model.fcos
        self.strides = list(fcos.strides)
        self.score_thresh = float(fcos.score_thresh)
        self.pre_nms_topk = int(fcos.pre_nms_topk)
        self.nms_thresh = float(fcos.nms_thresh)
        self.post_nms_topk = int(fcos.post_nms_topk)
        self.thresh_with_ctr = bool(fcos.thresh_with_ctr)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            image: (3, H, W) float, the model's input format (``INPUT.FORMAT``, 0-255), already resized as
                the model's test-time input (``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``).

        Returns:
            boxes (D, 4) XYXY in the image, clipped to it; scores (D,) sqrt(class x centerness), decreasing;
            classes (D,) int64; mask_probs (D, H, W) float in [0, 1] at the image's size (CondInst's masks are
            ``mask_probs > MODEL.CONDINST.MASK_THRESHOLD``).
        """
        model = self.model
        height, width = image.shape[-2], image.shape[-1]
        x = (image.to(model.pixel_mean.dtype) - model.pixel_mean) / model.pixel_std
        padded = ImageList.from_tensors([x], model.size_divisibility).tensor
        features = model.backbone(padded)
        mask_feats = model.mask_branch(features)
        feats = [features[name] for name in model.fcos.in_features]
        out = model.fcos.head(feats)

        boxes, scores, classes, locations, levels, params = self._detect(out, feats, height, width)
        logits = model.mask_logits(mask_feats, torch.zeros_like(levels), locations, levels, params)
        # the same two resizes as CondInst.postprocess: to stride 1 of the padded input, cropped to the image
        probs = F.interpolate(logits.sigmoid(), scale_factor=float(model.mask_out_stride), mode="bilinear",
                              align_corners=False)
        return boxes, scores, classes, probs[:, 0, :height, :width]

    def _detect(self, out, feats, height, width):
        """FCOS's post-processing (:func:`~wsis_d2.modeling.fcos.inference.fcos_detections_single_image`)
        without data-dependent control flow. Returns boxes, scores, classes and each detection's location,
        FPN level and controller output (its dynamic head's parameters)."""
        per_level = []
        for level, stride in enumerate(self.strides):
            h, w = feats[level].shape[-2], feats[level].shape[-1]
            cls_prob = out["logits"][level][0].flatten(1).t().sigmoid()  # (L, K)
            num_classes = cls_prob.shape[1]
            joint = cls_prob * out["ctrness"][level][0].flatten(1).t().sigmoid()
            candidate = (joint if self.thresh_with_ctr else cls_prob) > self.score_thresh
            # the best pre_nms_topk candidates: padding to at least k entries keeps k fixed for any image size
            flat = torch.where(candidate, joint, torch.full_like(joint, -1.0)).flatten()
            flat = torch.cat([flat, flat.new_full((self.pre_nms_topk,), -1.0)])
            top_scores, top = flat.topk(self.pre_nms_topk)
            top = top[top_scores >= 0]  # candidates only (joint >= 0 always)
            loc_idx, cls_idx = top // num_classes, top % num_classes
            reg = out["box_reg"][level][0].flatten(1).t()[loc_idx] * stride
            loc = grid_locations(h, w, stride, flat.device)[loc_idx]
            per_level.append((ltrb_to_boxes(loc, reg), joint.flatten()[top], cls_idx, loc,
                              torch.full_like(cls_idx, level), out["extra"][level][0].flatten(1).t()[loc_idx]))
        boxes, scores, classes, locations, levels, params = (torch.cat(parts) for parts in zip(*per_level))
        scores = scores.sqrt()
        # Boxes.clip with the size as tensors: (x1, x2) to [0, W], (y1, y2) to [0, H]
        size = torch.stack([width, height, width, height]) if isinstance(width, torch.Tensor) else \
            torch.tensor([width, height, width, height])
        boxes = torch.min(boxes.clamp(min=0), size.to(boxes))
        keep = batched_nms(boxes, scores, classes, self.nms_thresh)[: self.post_nms_topk]
        return boxes[keep], scores[keep], classes[keep], locations[keep], levels[keep], params[keep]
