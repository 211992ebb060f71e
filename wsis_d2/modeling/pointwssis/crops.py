"""Object crops for MaskRefineNet and pasting its output back (PointWSSIS).

The crop is the object's box scaled by ``scale`` about its centre (U[1, 2] in
training, 2 at test time in the reference), grown to contain the point, and
resampled to S x S with ROIAlign (so image, mask and point share one frame).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align


def crop_boxes(boxes: torch.Tensor, points: torch.Tensor, scale) -> torch.Tensor:
    """(N, 4) XYXY boxes scaled about their centres by ``scale`` (float or (N,)), grown to contain
    ``points`` (N, 2) with a one-pixel margin."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0) / 2 * torch.as_tensor(scale, dtype=boxes.dtype,
                                                                             device=boxes.device).reshape(-1, 1)
    lo = torch.minimum(centre - half, points - 1.0)
    hi = torch.maximum(centre + half, points + 1.0)
    return torch.cat([lo, hi], dim=1)


def crop_inputs(image: torch.Tensor, masks: torch.Tensor, crops: torch.Tensor, points: torch.Tensor,
                size: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Args:
        image: (3, H, W) float; masks: (N, H, W) float rough masks; crops: (N, 4) XYXY crop boxes;
        points: (N, 2) in image coordinates.

    Returns:
        image crops (N, 3, S, S), mask crops (N, 1, S, S), points in crop pixels (N, 2).
    """
    rois = torch.cat([torch.zeros_like(crops[:, :1]), crops], dim=1)
    image_crops = roi_align(image[None].float(), rois, output_size=size, spatial_scale=1.0, sampling_ratio=2,
                            aligned=True)
    mask_rois = torch.cat([torch.arange(len(crops), device=crops.device, dtype=crops.dtype)[:, None], crops], dim=1)
    mask_crops = roi_align(masks[:, None].float(), mask_rois, output_size=size, spatial_scale=1.0,
                           sampling_ratio=2, aligned=True)
    scale = size / (crops[:, 2:] - crops[:, :2]).clamp(min=1e-3)
    return image_crops, mask_crops, (points - crops[:, :2]) * scale


def paste_masks(crop_probs: torch.Tensor, crops: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 1, S, S) probabilities on crops -> (N, H, W) in the image (0 outside each crop)."""
    n = crop_probs.shape[0]
    xs = torch.arange(width, device=crops.device, dtype=crops.dtype) + 0.5
    ys = torch.arange(height, device=crops.device, dtype=crops.dtype) + 0.5
    # pixel centres in each crop's [-1, 1] frame (grid_sample, align_corners=False)
    gx = (xs[None] - crops[:, 0:1]) / (crops[:, 2:3] - crops[:, 0:1]) * 2 - 1  # (N, W)
    gy = (ys[None] - crops[:, 1:2]) / (crops[:, 3:4] - crops[:, 1:2]) * 2 - 1  # (N, H)
    grid = torch.stack([gx[:, None, :].expand(n, height, width), gy[:, :, None].expand(n, height, width)], dim=3)
    # border padding keeps the crop's edge cells at full value; outside the crop is zero
    inside = (grid.abs() <= 1).all(dim=3)
    pasted = F.grid_sample(crop_probs, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
    return pasted * inside
