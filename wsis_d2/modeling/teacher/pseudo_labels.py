"""Teacher predictions -> pseudo masks for the GT boxes (BoxTeacher, Cheng et al., CVPR 2023, Sec. 3.2).

A prediction's *mask-aware* score is the mean probability over its confident
pixels (p > ``mask_thresh``); it is ranked by sqrt(cls * mask score). In rank
order each prediction takes the unmatched GT box it overlaps most (IoU >=
``iou_thresh``); its probability map, clipped to that box, becomes the box's
pseudo mask with weight sqrt(sqrt(cls) * mask score). Unmatched boxes get
weight 0 (only the box losses train them).
"""
from typing import Tuple

import torch
from detectron2.structures import Boxes, pairwise_iou

from ..losses.box_targets import box_masks


def mask_aware_scores(mask_probs: torch.Tensor, mask_thresh: float = 0.5) -> torch.Tensor:
    """(D, H, W) probabilities -> (D,) mean probability over the pixels above ``mask_thresh`` (0 if none)."""
    confident = (mask_probs > mask_thresh).to(mask_probs.dtype)
    return (mask_probs * confident).flatten(1).sum(1) / confident.flatten(1).sum(1).clamp(min=1.0)


def assign_pseudo_masks(gt_boxes: torch.Tensor, pred_boxes: torch.Tensor, cls_scores: torch.Tensor,
                        mask_probs: torch.Tensor, iou_thresh: float = 0.5,
                        mask_thresh: float = 0.5) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Args:
        gt_boxes: (G, 4) XYXY GT boxes; pred_boxes: (D, 4) teacher boxes, same frame.
        cls_scores: (D,) teacher class scores; mask_probs: (D, H, W) teacher mask probabilities.

    Returns:
        pseudo masks (G, H, W) in [0, 1] (zero where unmatched) and weights (G,).
    """
    num_gt, (h, w) = gt_boxes.shape[0], mask_probs.shape[-2:]
    masks = mask_probs.new_zeros((num_gt, h, w))
    weights = mask_probs.new_zeros((num_gt,))
    if num_gt == 0 or pred_boxes.shape[0] == 0:
        return masks, weights
    mask_scores = mask_aware_scores(mask_probs, mask_thresh)
    rank = (cls_scores * mask_scores).sqrt()
    iou = pairwise_iou(Boxes(pred_boxes), Boxes(gt_boxes))  # (D, G)
    taken = torch.zeros(num_gt, dtype=torch.bool, device=gt_boxes.device)
    for d in torch.argsort(rank, descending=True).tolist():
        candidates = iou[d].masked_fill(taken, -1.0)
        g = int(candidates.argmax())
        if candidates[g] < iou_thresh:
            continue
        taken[g] = True
        inside = box_masks(gt_boxes[g: g + 1], h, w, 1)[0] >= 0.5
        masks[g] = mask_probs[d] * inside
        weights[g] = (cls_scores[d].sqrt() * mask_scores[d]).sqrt()
    return masks, weights
