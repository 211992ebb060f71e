"""Which cells inside a box have the colour of the background around the box.

A box-trained teacher errs by filling: a hole or a concave bay inside the box
looks like object to box losses (projections cannot see it), and its own pseudo
masks then teach the student to keep it filled. Box2Seg and GrabCut read the
background's colours from the pixels just outside the box; this module does the
same per instance on tensors: a cell inside the box whose LAB colour is within
BoxInst's colour-similarity threshold (exp(-||c_i - c_j|| / theta) >= thresh,
theta = 2) of some cell of the band around the box is "background-coloured".

Not part of the BoxTeacher reference: ``MODEL.BOX_TEACHER.BACKGROUND_COLOR``
applies it to ``PseudoMaskLoss``.
"""
import torch
import torch.nn.functional as F


def band_samples(band: torch.Tensor, max_samples: int) -> torch.Tensor:
    """(n, L) bool cells of each instance's band -> (n, K) indices of at most ``max_samples`` evenly
    spaced band cells (K = min(max_samples, L)), -1 where an instance has fewer."""
    count = band.sum(1, keepdim=True)
    step = (count + max_samples - 1).div(max_samples, rounding_mode="floor").clamp(min=1)
    rank = band.cumsum(1) - 1  # 0-based index of each band cell among its instance's band cells
    keep = band & (rank % step == 0)
    k = min(max_samples, band.shape[1])
    score, index = (keep.float() + torch.linspace(1e-3, 0, band.shape[1], device=band.device)).topk(k, dim=1)
    return torch.where(score >= 1, index, torch.full_like(index, -1))


@torch.no_grad()
def background_colored(lab: torch.Tensor, in_box: torch.Tensor, valid: torch.Tensor, band: int = 2,
                       max_samples: int = 64, thresh: float = 0.3, theta: float = 2.0) -> torch.Tensor:
    """
    Args:
        lab: (n, 3, h, w) each instance's image in CIE LAB; in_box: (n, 1, h, w) bool cells inside its box;
        valid: (n, 1, h, w) bool cells of the image (not padding);
        band: width in cells of the band around the box that samples the background;
        max_samples: band cells compared with (evenly spaced along the band; bounds the (n, h*w, K) distances).

    Returns:
        (n, 1, h, w) bool: inside the box and as similar as ``thresh`` to a sampled band cell.
        An instance without band cells (its box covers the image) has none.
    """
    n, _, h, w = lab.shape
    if n == 0:
        return torch.zeros_like(in_box)
    around = F.max_pool2d(in_box.float(), kernel_size=2 * band + 1, stride=1, padding=band) > 0
    ring = (around & ~in_box & valid).flatten(1)
    index = band_samples(ring, max_samples)
    colours = lab.flatten(2).transpose(1, 2)  # (n, h*w, 3)
    sampled = colours.gather(1, index.clamp(min=0)[..., None].expand(-1, -1, 3))
    distance = torch.cdist(colours, sampled).masked_fill((index < 0)[:, None, :], float("inf"))
    similar = torch.exp(-distance.min(dim=2).values / theta) >= thresh
    return similar.view(n, 1, h, w) & in_box
