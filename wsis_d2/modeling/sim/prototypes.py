"""Class-wise prototypes of SIM (Li, Qi, Lu, Wang, Liu, Yang, Jia, "SIM: Semantic-aware Instance Mask
Generation for Box-Supervised Instance Segmentation", CVPR 2023, Sec. 3.2).

Each class keeps K L2-normalised prototypes of the mask-feature dimension C.
Each training step, the teacher's (normalised) mask features at its confident
pixels of that class are assigned to the class's prototypes by Sinkhorn-Knopp
(an equipartition: every prototype gets a share, so none collapses) made hard
with a Gumbel-softmax (``hard=True``: the sample is an argmax of Gumbel-perturbed
log-assignments, so the temperature does not change it); each prototype then
moves by EMA towards the mean of its features. Sinkhorn runs on each process's
own features; the sums and counts are all-reduced, so every process holds the
same prototypes. They are buffers, so checkpoints and ``--resume`` keep them.
Computed in float32 (Sinkhorn's exp(x / 0.05) underflows in half precision).
"""
from typing import List

import torch
import torch.distributed as dist
import torch.nn.functional as F
from detectron2.utils import comm
from torch import nn


def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft equipartitioned assignment (SwAV's Sinkhorn-Knopp).

    Args:
        scores: (n, K) similarities of n features to K prototypes.

    Returns:
        (n, K) assignment; each row sums to 1, and each column to about n / K.
    """
    n, k = scores.shape
    # subtracting the max keeps exp() finite; a constant shift cancels in the normalisations
    q = torch.exp((scores - scores.max()) / epsilon).t()  # (K, n)
    q = q / q.sum()
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / n
    return (q * n).t()


class ClassPrototypes(nn.Module):
    """
    Args:
        num_classes, num_prototypes (K), dim (C): the prototype bank's shape.
        momentum: EMA momentum of a prototype update.
        epsilon, iterations: Sinkhorn's entropy weight and iterations.
        tau: temperature of the hard Gumbel-softmax.
        max_pixels: features sampled per class and step (bounds memory on large images).
    """

    def __init__(self, num_classes: int, num_prototypes: int, dim: int, momentum: float = 0.999,
                 epsilon: float = 0.05, iterations: int = 3, tau: float = 0.5, max_pixels: int = 4096):
        super().__init__()
        # the same start in every process (fixed seed), unit vectors
        start = torch.randn(num_classes, num_prototypes, dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("prototypes", F.normalize(start, dim=-1))
        self.momentum = momentum
        self.epsilon = epsilon
        self.iterations = iterations
        self.tau = tau
        self.max_pixels = max_pixels

    @torch.no_grad()
    def update(self, features: List[torch.Tensor], classes: List[int]) -> None:
        """
        Args:
            features: per confident instance, (n_i, C) teacher features (any norm) at its confident pixels.
            classes: each instance's class.
        """
        num_classes, k, dim = self.prototypes.shape
        sums = self.prototypes.new_zeros((num_classes, k, dim))
        counts = self.prototypes.new_zeros((num_classes, k))
        for c in sorted(set(classes)):
            feats = torch.cat([f for f, fc in zip(features, classes) if fc == c])
            if feats.shape[0] > self.max_pixels:
                feats = feats[torch.randperm(feats.shape[0], device=feats.device)[: self.max_pixels]]
            feats = F.normalize(feats.float(), dim=-1)
            assign = sinkhorn(feats @ self.prototypes[c].t(), self.epsilon, self.iterations)
            hard = F.gumbel_softmax(assign.clamp(min=1e-12).log(), tau=self.tau, hard=True)  # (n, K) one-hot
            sums[c] = hard.t() @ feats
            counts[c] = hard.sum(0)
        if comm.get_world_size() > 1:
            dist.all_reduce(sums)
            dist.all_reduce(counts)
        seen = counts > 0
        means = F.normalize(sums / counts.clamp(min=1.0)[..., None], dim=-1)
        moved = F.normalize(self.momentum * self.prototypes + (1 - self.momentum) * means, dim=-1)
        self.prototypes.copy_(torch.where(seen[..., None], moved, self.prototypes))

    def semantic_map(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """sigmoid(max_k <z, p_{c,k}>) with z the normalised features.

        Args:
            features: (n, C, h, w) each instance's image's features; classes: (n,) its class.

        Returns:
            (n, h, w) in (0.27, 0.73): how much each pixel looks like the instance's class.
        """
        z = F.normalize(features.float(), dim=1)
        similarity = torch.einsum("nchw,nkc->nkhw", z, self.prototypes[classes])
        return similarity.max(dim=1).values.sigmoid()
