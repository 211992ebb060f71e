"""Pairwise affinity between neighbouring pixels, shared by the colour-pairwise losses.

BoxInst (Tian et al., CVPR 2021, Sec. 3.2) links each pixel to its 8 neighbours
in a ``size`` x ``size`` pattern with ``dilation``; an edge's colour similarity
is S = exp(-||c_i - c_j|| / theta) with c the LAB colour (theta = 2). BoxTeacher
and SIM reuse the same edges; SIM also weighs them by the same similarity of the
teacher's (unit) mask features, theta = 1.

Everything here works on whole batches with shifted slices of a padded map:
no ``unfold`` of full feature maps (which would hold size^2 copies of them),
no per-pixel Python, and the LAB conversion runs on tensors on the model's
device (the reference converts with skimage on the CPU, per image).
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F

# sRGB (D65) -> XYZ and the D65 white point, as in skimage.color.rgb2lab / OpenCV.
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]])
_WHITE_D65 = torch.tensor([0.950456, 1.0, 1.088754])


def to_rgb(images: torch.Tensor, image_format: str) -> torch.Tensor:
    """(N, 3, H, W) in detectron2's ``INPUT.FORMAT`` ("BGR" or "RGB") -> RGB channel order."""
    return images.flip(1) if image_format == "BGR" else images


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 3, H, W) CIE LAB (L in [0, 100])."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(rgb), linear) / _WHITE_D65.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=1e-12) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def neighbour_offsets(size: int = 3, dilation: int = 2) -> List[Tuple[int, int]]:
    """(dy, dx) of the size^2 - 1 neighbours, row-major, centre excluded."""
    r = size // 2
    return [(dy * dilation, dx * dilation) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]


def neighbours(x: torch.Tensor, size: int = 3, dilation: int = 2, fill: float = 0.0) -> torch.Tensor:
    """Each pixel's neighbours: (N, C, H, W) -> (N, C, K, H, W), K = size^2 - 1.

    ``out[:, :, k, i, j] = x[:, :, i + dy_k, j + dx_k]``, ``fill`` outside the map.
    """
    h, w = x.shape[-2:]
    p = (size // 2) * dilation
    padded = F.pad(x, (p, p, p, p), value=fill)
    return torch.stack([padded[..., p + dy: p + dy + h, p + dx: p + dx + w]
                        for dy, dx in neighbour_offsets(size, dilation)], dim=2)


def neighbour_similarity(x: torch.Tensor, size: int = 3, dilation: int = 2, theta: float = 1.0) -> torch.Tensor:
    """(N, C, H, W) per-pixel vectors -> (N, K, H, W) edge similarities exp(-||x_i - x_j|| / theta)."""
    diff = x[:, :, None] - neighbours(x, size, dilation)
    return torch.exp(-torch.linalg.vector_norm(diff, dim=1) / theta)


def color_similarity(lab: torch.Tensor, size: int = 3, dilation: int = 2, theta: float = 2.0) -> torch.Tensor:
    """(N, 3, H, W) LAB -> (N, K, H, W) colour similarities (BoxInst's theta = 2)."""
    return neighbour_similarity(lab, size, dilation, theta)


def unit_feature_similarity(feats: torch.Tensor, size: int = 3, dilation: int = 2) -> torch.Tensor:
    """(N, C, H, W) deep features -> (N, K, H, W) exp(-||f_i - f_j||) of the L2-normalised features
    (SIM's feature affinity; unit vectors bound it to [exp(-2), 1] whatever the features' scale)."""
    return neighbour_similarity(F.normalize(feats.float(), dim=1), size, dilation, theta=1.0)


def valid_edges(valid: torch.Tensor, size: int = 3, dilation: int = 2) -> torch.Tensor:
    """(N, 1, H, W) bool pixel validity -> (N, K, H, W): both ends of the edge valid."""
    return valid & (neighbours(valid.float(), size, dilation, fill=0.0)[:, 0] > 0.5)


def log_same_label_probability(logits: torch.Tensor, size: int = 3, dilation: int = 2) -> torch.Tensor:
    """log P(pixel and neighbour share a label) = log(p_i p_j + (1 - p_i)(1 - p_j)).

    Computed in log space from the logits (stable where p is near 0 or 1).
    (n, 1, H, W) -> (n, K, H, W).
    """
    log_fg = F.logsigmoid(logits)
    log_bg = F.logsigmoid(-logits)
    both_fg = log_fg + neighbours(log_fg, size, dilation)[:, 0]
    both_bg = log_bg + neighbours(log_bg, size, dilation)[:, 0]
    return torch.logaddexp(both_fg, both_bg)
