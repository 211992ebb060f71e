"""CondInst's dynamic mask head (Tian et al., ECCV 2020, Sec. 3.2).

Each instance gets its own small FCN: ``num_layers`` 1x1 convs whose weights
and biases are predicted by the controller at the instance's location. Its
input is the shared mask features plus two relative-coordinate channels
(offsets of every mask-feature location to the instance's location, divided
by the instance level's size of interest). With 8 mask channels, 8 hidden
channels and 3 layers that is 169 parameters per instance.

All instances run at once as batched matrix products (bmm), not per-instance
convolutions.
"""
from typing import List

import torch
from torch import nn
from torch.nn import functional as F

from ..fcos.targets import compute_locations


def dynamic_head_param_count(in_channels: int, channels: int, num_layers: int, rel_coords: bool = True) -> int:
    """Number of parameters the controller predicts per instance."""
    dims = [in_channels + (2 if rel_coords else 0)] + [channels] * (num_layers - 1) + [1]
    return sum(d_in * d_out + d_out for d_in, d_out in zip(dims[:-1], dims[1:]))


class DynamicMaskHead(nn.Module):
    def __init__(self, in_channels: int, channels: int = 8, num_layers: int = 3, rel_coords: bool = True,
                 sizes_of_interest: List[float] = (64, 128, 256, 512)):
        """
        Args:
            in_channels: channels of the mask features.
            sizes_of_interest: FCOS's level boundaries; level l's relative
                coordinates are divided by the l-th entry (the last level by
                twice the last boundary).
        """
        super().__init__()
        self.rel_coords = rel_coords
        self.dims = [in_channels + (2 if rel_coords else 0)] + [channels] * (num_layers - 1) + [1]
        self.num_params = dynamic_head_param_count(in_channels, channels, num_layers, rel_coords)
        soi = list(sizes_of_interest) + [2 * sizes_of_interest[-1]]
        self.register_buffer("sizes_of_interest", torch.tensor(soi, dtype=torch.float32), persistent=False)

    def _split_params(self, params: torch.Tensor):
        """(n, num_params) -> per layer weights (n, out, in) and biases (n, out, 1)."""
        n = params.shape[0]
        weights, biases, offset = [], [], 0
        for d_in, d_out in zip(self.dims[:-1], self.dims[1:]):
            weights.append(params[:, offset: offset + d_in * d_out].reshape(n, d_out, d_in))
            offset += d_in * d_out
        for d_out in self.dims[1:]:
            biases.append(params[:, offset: offset + d_out].reshape(n, d_out, 1))
            offset += d_out
        return weights, biases

    def forward(self, mask_feats: torch.Tensor, mask_feat_stride: int, im_inds: torch.Tensor,
                locations: torch.Tensor, levels: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """
        Args:
            mask_feats: (N, C, Hm, Wm) shared mask features at ``mask_feat_stride``.
            im_inds: (n,) image of each instance; locations: (n, 2) (x, y) of the
                location that predicted it; levels: (n,) its FPN level;
            params: (n, num_params) dynamic parameters from the controller.

        Returns:
            (n, 1, Hm, Wm) mask logits at ``mask_feat_stride``.
        """
        n = params.shape[0]
        _, c, h, w = mask_feats.shape
        if params.shape[1] != self.num_params:
            raise ValueError(f"controller gives {params.shape[1]} parameters, the dynamic head needs {self.num_params}")
        x = mask_feats[im_inds].reshape(n, c, h * w)
        if self.rel_coords:
            grid = compute_locations(h, w, mask_feat_stride, mask_feats.device)  # (HW, 2)
            rel = (locations[:, None, :] - grid[None]) / self.sizes_of_interest[levels][:, None, None]
            x = torch.cat([rel.transpose(1, 2).to(x.dtype), x], dim=1)
        weights, biases = self._split_params(params)
        for k, (weight, bias) in enumerate(zip(weights, biases)):
            x = torch.bmm(weight, x) + bias
            if k < len(weights) - 1:
                x = F.relu(x)
        return x.reshape(n, 1, h, w)
