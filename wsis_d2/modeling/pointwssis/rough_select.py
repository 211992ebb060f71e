"""Which rough mask a point-labelled object starts from: the teacher's or the box prior's (PointWSSIS).

The reference's adaptive selection keeps, per point, the candidate mask with the
best score (among its FPN levels). Here the candidates are the teacher's mask
matched to the point and a box prior (GrabCut in the object's box, seeded with
the point), and the object's GT box is the judge, as in BoxInst's projection
term: a mask that is the object's spans its box. A candidate's box consistency
is the IoU of its tight bounding box with the GT box (pixel extents); the
teacher's mask is kept only when it is strictly more consistent than the prior.
"""
import torch
from detectron2.structures import BitMasks, Boxes
from detectron2.structures.boxes import matched_pairwise_iou

from ...data.pixels import box_pixel_ranges


def box_consistency(masks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """
    Args:
        masks: (n, H, W) bool; boxes: (n, 4) XYXY GT boxes in pixels.

    Returns:
        (n,) IoU of each mask's tight box (right/bottom pixel edges exclusive) with the pixels its
        GT box covers (:func:`~wsis_d2.data.pixels.box_pixel_ranges`); 0 for an empty mask.
    """
    if masks.shape[0] == 0:
        return torch.zeros(0, device=masks.device)
    h, w = masks.shape[-2:]
    extents = []
    for box in boxes.tolist():
        (r0, r1), (c0, c1) = box_pixel_ranges(box, h, w)
        extents.append([c0, r0, c1, r1])
    extents = Boxes(torch.tensor(extents, dtype=torch.float32, device=masks.device))
    return matched_pairwise_iou(BitMasks(masks).get_bounding_boxes(), extents)


def keep_teacher_masks(teacher: torch.Tensor, prior: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(n,) bool: where the teacher's mask (n, H, W) is more box-consistent than the prior's (n, H, W)
    (both already clipped to their boxes (n, 4))."""
    return box_consistency(teacher, boxes) > box_consistency(prior, boxes)
