"""Guided filter (He, Sun, Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013), in torch.

Edge-aware smoothing of ``src`` that follows the edges of ``guide``: inside
every (2r+1)^2 window the output is a linear function of the guide. Box means
are ``avg_pool2d`` without padding counts, so it runs batched on CPU and GPU.
"""
import torch
import torch.nn.functional as F


def _box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int = 2, eps: float = 1e-2) -> torch.Tensor:
    """
    Args:
        guide: (n, 1, h, w) grey-level guide.
        src: (n, C, h, w) maps to smooth.
        eps: regularisation; larger smooths across weaker edges.

    Returns:
        (n, C, h, w) filtered ``src``.
    """
    mean_i = _box_mean(guide, radius)
    mean_p = _box_mean(src, radius)
    cov_ip = _box_mean(guide * src, radius) - mean_i * mean_p
    var_i = _box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box_mean(a, radius) * guide + _box_mean(b, radius)
