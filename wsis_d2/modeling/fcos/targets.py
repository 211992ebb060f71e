"""FCOS target assignment (Tian et al., ICCV 2019, Sec. 3.1-3.2; center sampling from FCOS v2).

A location (x, y) is a positive for a GT box when it lies inside the box (or,
with center sampling, within ``radius`` strides of the box centre, clipped to
the box) and its largest regression distance falls in its level's size range.
Among several such boxes the smallest one wins.
"""
from typing import List, Sequence

import torch


def compute_locations(height: int, width: int, stride: int, device) -> torch.Tensor:
    """Image coordinates of a feature map's locations: (H*W, 2) as (x, y), row-major.

    Location (i, j) sits at the centre of the stride x stride block it covers:
    (j * stride + stride // 2, i * stride + stride // 2).
    """
    xs = torch.arange(width, dtype=torch.float32, device=device) * stride + stride // 2
    ys = torch.arange(height, dtype=torch.float32, device=device) * stride + stride // 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def level_size_ranges(sizes_of_interest: Sequence[float], num_levels: int) -> List[List[float]]:
    """[[lo, hi], ...] per level from the boundaries between levels."""
    if len(sizes_of_interest) != num_levels - 1:
        raise ValueError(f"MODEL.FCOS.SIZES_OF_INTEREST needs {num_levels - 1} boundaries for "
                         f"{num_levels} levels, got {list(sizes_of_interest)}")
    bounds = [-1.0] + [float(s) for s in sizes_of_interest] + [float("inf")]
    return [[bounds[i], bounds[i + 1]] for i in range(num_levels)]


def assign_fcos_targets(locations: torch.Tensor, size_ranges: torch.Tensor, strides: torch.Tensor,
                        gt_boxes: torch.Tensor, gt_classes: torch.Tensor, num_classes: int,
                        center_sample: bool = True, radius: float = 1.5):
    """Targets of one image.

    Args:
        locations: (L, 2) (x, y) of every location of every level.
        size_ranges: (L, 2) [lo, hi] of each location's level.
        strides: (L,) each location's stride.
        gt_boxes: (G, 4) XYXY; gt_classes: (G,) in [0, num_classes).

    Returns:
        labels: (L,) class index, ``num_classes`` for background;
        reg_targets: (L, 4) (l, t, r, b) distances divided by the stride;
        gt_inds: (L,) index of the assigned GT box, -1 for background.
    """
    num_locations = locations.shape[0]
    device = locations.device
    if gt_boxes.numel() == 0:
        return (torch.full((num_locations,), num_classes, dtype=torch.long, device=device),
                torch.zeros((num_locations, 4), device=device),
                torch.full((num_locations,), -1, dtype=torch.long, device=device))

    xs, ys = locations[:, 0:1], locations[:, 1:2]  # (L, 1)
    x0, y0, x1, y1 = gt_boxes.unbind(dim=1)  # (G,)
    ltrb = torch.stack([xs - x0, ys - y0, x1 - xs, y1 - ys], dim=2)  # (L, G, 4)

    if center_sample:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        r = strides[:, None] * radius  # (L, 1)
        cb_x0 = torch.maximum(cx - r, x0)
        cb_y0 = torch.maximum(cy - r, y0)
        cb_x1 = torch.minimum(cx + r, x1)
        cb_y1 = torch.minimum(cy + r, y1)
        inside = (xs > cb_x0) & (ys > cb_y0) & (xs < cb_x1) & (ys < cb_y1)
    else:
        inside = ltrb.min(dim=2).values > 0

    max_reg = ltrb.max(dim=2).values
    in_level = (max_reg >= size_ranges[:, 0:1]) & (max_reg <= size_ranges[:, 1:2])

    areas = ((x1 - x0) * (y1 - y0))[None].expand(num_locations, -1).clone()
    areas[~(inside & in_level)] = float("inf")
    min_area, gt_inds = areas.min(dim=1)
    background = torch.isinf(min_area)

    labels = gt_classes[gt_inds].clone()
    labels[background] = num_classes
    reg_targets = ltrb[torch.arange(num_locations, device=device), gt_inds] / strides[:, None]
    gt_inds = gt_inds.clone()
    gt_inds[background] = -1
    return labels, reg_targets, gt_inds


def centerness_targets(reg_targets: torch.Tensor) -> torch.Tensor:
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) for (P, 4) positive targets."""
    lr = reg_targets[:, [0, 2]]
    tb = reg_targets[:, [1, 3]]
    ratio = (lr.min(dim=1).values / lr.max(dim=1).values.clamp(min=1e-6)) * (
        tb.min(dim=1).values / tb.max(dim=1).values.clamp(min=1e-6))
    return torch.sqrt(ratio.clamp(min=0))
