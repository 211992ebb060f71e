"""FCOS post-processing: score threshold, per-level top-k, class-wise NMS, top-k."""
from typing import List

import torch
from detectron2.layers import batched_nms
from detectron2.structures import Boxes, Instances

from .losses import ltrb_to_boxes


def fcos_detections_single_image(logits: List[torch.Tensor], box_reg: List[torch.Tensor],
                                 ctrness: List[torch.Tensor], extra: List[torch.Tensor],
                                 locations: List[torch.Tensor], strides: List[int], image_size,
                                 score_thresh: float, pre_nms_topk: int, nms_thresh: float,
                                 post_nms_topk: int, thresh_with_ctr: bool) -> Instances:
    """Detections of one image from its per-level, flattened predictions.

    Args (lists over levels, each for this image only):
        logits: (Hl*Wl, K); box_reg: (Hl*Wl, 4) in stride units; ctrness: (Hl*Wl,);
        extra: (Hl*Wl, E) or empty list; locations: (Hl*Wl, 2).
        image_size: (h, w) of the (unpadded) input image.

    Returns:
        Instances with ``pred_boxes``, ``scores`` = sqrt(cls x ctrness), ``pred_classes``,
        ``locations`` (D, 2), ``fpn_levels`` (D,) and, if ``extra`` is given,
        ``top_feats`` (D, E).
    """
    per_level = []
    for level, (lg, reg, ctr, loc) in enumerate(zip(logits, box_reg, ctrness, locations)):
        cls_prob = lg.sigmoid()
        ctr_prob = ctr.sigmoid()[:, None]
        joint = cls_prob * ctr_prob
        candidates = (joint if thresh_with_ctr else cls_prob) > score_thresh
        loc_idx, cls_idx = candidates.nonzero(as_tuple=True)
        scores = joint[loc_idx, cls_idx]
        if scores.numel() > pre_nms_topk:
            scores, keep = scores.topk(pre_nms_topk)
            loc_idx, cls_idx = loc_idx[keep], cls_idx[keep]
        boxes = ltrb_to_boxes(loc[loc_idx], reg[loc_idx] * strides[level])
        per_level.append((boxes, scores, cls_idx, loc[loc_idx],
                          torch.full_like(cls_idx, level), extra[level][loc_idx] if extra else None))

    boxes = torch.cat([p[0] for p in per_level])
    scores = torch.cat([p[1] for p in per_level]).sqrt()
    classes = torch.cat([p[2] for p in per_level])
    boxes_struct = Boxes(boxes)
    boxes_struct.clip(image_size)
    keep = batched_nms(boxes_struct.tensor, scores, classes, nms_thresh)[:post_nms_topk]

    result = Instances(image_size)
    result.pred_boxes = boxes_struct[keep]
    result.scores = scores[keep]
    result.pred_classes = classes[keep]
    result.locations = torch.cat([p[3] for p in per_level])[keep]
    result.fpn_levels = torch.cat([p[4] for p in per_level])[keep]
    if extra:
        result.top_feats = torch.cat([p[5] for p in per_level])[keep]
    return result
