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
from detectron2.structures import Boxes
from detectron2.structures.boxes import matched_pairwise_iou

from ...data.pixels import box_pixel_ranges


def tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(n, H, W) bool -> (n, 4) XYXY pixel-edge boxes of the set pixels (zeros for an empty mask)."""
    n, h, w = masks.shape
    rows, cols = masks.any(dim=2), masks.any(dim=1)  # (n, H), (n, W)
    r0 = rows.float().argmax(dim=1)
    r1 = h - rows.flip(1).float().argmax(dim=1)
    c0 = cols.float().argmax(dim=1)
    c1 = w - cols.flip(1).float().argmax(dim=1)
    boxes = torch.stack([c0, r0, c1, r1], dim=1).float()
    return boxes * rows.any(dim=1, keepdim=True)


def box_consistency(masks: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """
    Args:
        masks: (n, H, W) bool; boxes: (n, 4) XYXY GT boxes in pixels.

    Returns:
        (n,) IoU of each mask's tight box with the pixels its GT box covers (0 for an empty mask).
    """
    if masks.shape[0] == 0:
        return torch.zeros(0)
    h, w = masks.shape[-2:]
    extents = []
    for box in boxes.tolist():
        (r0, r1), (c0, c1) = box_pixel_ranges(box, h, w)
        extents.append([c0, r0, c1, r1])
    return matched_pairwise_iou(Boxes(tight_boxes(masks)), Boxes(torch.tensor(extents, dtype=torch.float32)))


def keep_teacher_masks(teacher: torch.Tensor, prior: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(n,) bool: where the teacher's mask (n, H, W) is more box-consistent than the prior's (n, H, W)
    (both already clipped to their boxes (n, 4))."""
    return box_consistency(teacher, boxes) > box_consistency(prior, boxes)
