"""Which teacher prediction belongs to each labelled point (PointWSSIS, steps 2 and 3).

Each weakly-labelled object has one point and its class. A prediction can serve
a point when it has the point's class and its mask contains the point; points
take predictions in descending score order, each prediction at most once
(greedy one-to-one). A point no prediction covers gets none (-1) rather than a
wrong one: its object starts from the box prior (:mod:`.rough_select`).
"""
import torch


def match_points_to_masks(points: torch.Tensor, point_classes: torch.Tensor, pred_masks: torch.Tensor,
                          pred_classes: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """
    Args:
        points: (P, 2) (x, y) image coordinates; point_classes: (P,).
        pred_masks: (D, H, W) bool; pred_classes, scores: (D,).

    Returns:
        (P,) long: the matched prediction of each point, -1 if none.
    """
    num_points = points.shape[0]
    match = torch.full((num_points,), -1, dtype=torch.long, device=points.device)
    if num_points == 0 or pred_masks.shape[0] == 0:
        return match
    h, w = pred_masks.shape[-2:]
    xs = points[:, 0].floor().long().clamp(0, w - 1)
    ys = points[:, 1].floor().long().clamp(0, h - 1)
    covers = pred_masks[:, ys, xs].T & (point_classes[:, None] == pred_classes[None, :])  # (P, D)
    taken_points = torch.zeros(num_points, dtype=torch.bool, device=points.device)
    for d in torch.argsort(scores, descending=True).tolist():
        candidates = covers[:, d] & ~taken_points
        if not bool(candidates.any()):
            continue
        # among the points this prediction covers, the one nearest its mask's centre of mass
        ys_d, xs_d = torch.nonzero(pred_masks[d], as_tuple=True)
        centre = torch.stack([xs_d.float().mean() + 0.5, ys_d.float().mean() + 0.5])
        idx = torch.nonzero(candidates).squeeze(1)
        p = idx[((points[idx] - centre) ** 2).sum(1).argmin()]
        match[p] = d
        taken_points[p] = True
    return match
