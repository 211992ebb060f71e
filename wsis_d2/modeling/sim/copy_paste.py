"""SIM's online copy-paste (Li et al., CVPR 2023, Sec. 3.4; pasting as Ghiasi et al., "Simple
Copy-Paste", CVPR 2021).

A bank keeps the confident teacher objects (mask > 0.7 inside the GT box) of
the last ``size`` training images. With probability 0.5 an image gets 1-3
objects (half of a random bank image's objects, at most 3) sampled with
probability proportional to score^3, pasted at their own position. Pasted
objects are fully labelled by their mask; what they cover becomes background
for the image's own objects, and an own object whose box is mostly covered
(``max_occlusion``) is dropped, since its box no longer describes what is
visible.
"""
import random
from collections import deque
from typing import Optional

import torch
from detectron2.structures import BitMasks, Boxes, Instances

from ..losses.box_targets import box_masks


class ObjectBank:
    """The last ``size`` images' confident objects: (image (3, H, W), masks (n, H, W) bool,
    classes (n,), scores (n,)), kept on the CPU (full-size masks: about 1 MB per object of a
    COCO-size image); masks under ``min_area`` pixels are not kept."""

    def __init__(self, size: int = 50, min_area: int = 16):
        self.entries = deque(maxlen=size)
        self.min_area = min_area

    def __len__(self):
        return len(self.entries)

    def add(self, image: torch.Tensor, masks: torch.Tensor, classes: torch.Tensor, scores: torch.Tensor) -> None:
        big = masks.flatten(1).sum(1) >= self.min_area
        if bool(big.any()):
            self.entries.append((image.cpu(), masks[big].bool().cpu(), classes[big].cpu(), scores[big].float().cpu()))

    def sample(self, max_objects: int = 3, score_power: float = 3.0):
        """(image, masks, classes) of up to ``max_objects`` objects of a random bank image, or None."""
        if not self.entries:
            return None
        image, masks, classes, scores = random.choice(self.entries)
        count = min(max(len(masks) // 2, 1), max_objects)
        probs = scores.clamp(min=1e-6) ** score_power
        chosen = torch.multinomial(probs, count, replacement=False)
        return image, masks[chosen], classes[chosen]


def paste_objects(image: torch.Tensor, instances: Instances, source_image: torch.Tensor,
                  source_masks: torch.Tensor, source_classes: torch.Tensor, min_area: int = 16,
                  max_occlusion: float = 0.5) -> Optional[tuple]:
    """Paste source objects onto ``image`` at their own coordinates (cut to the image).

    Args:
        image: (3, H, W) target image; instances: its ``gt_boxes``, ``gt_classes``, ``gt_pseudo_masks``,
            ``gt_pseudo_valid`` ((G, H, W) bool), ``gt_pseudo_weights``, ``gt_pasted`` (other fields are
            not kept).
        source_image: (3, Hs, Ws); source_masks: (m, Hs, Ws) bool, listed bottom to top; source_classes: (m,).

    Returns:
        (new image, new instances) with the pasted objects appended (``gt_pasted`` True, weight 1,
        fully labelled), or None when no pasted object keeps ``min_area`` visible pixels.
    """
    device = image.device
    h, w = image.shape[-2:]
    hs, ws = min(h, source_image.shape[-2]), min(w, source_image.shape[-1])
    masks = torch.zeros((len(source_masks), h, w), dtype=torch.bool, device=device)
    masks[:, :hs, :ws] = source_masks[:, :hs, :ws].to(device)
    # an object is visible where no later (upper) one covers it
    above = torch.flip(torch.cumsum(torch.flip(masks.int(), [0]), 0), [0]) - masks.int()
    visible = masks & (above == 0)
    keep = visible.flatten(1).sum(1) >= min_area
    if not bool(keep.any()):
        return None
    visible, classes = visible[keep], source_classes.to(device)[keep]
    covered = visible.any(dim=0)

    new_image = image.clone()
    source = torch.zeros_like(image)
    source[:, :hs, :ws] = source_image[:, :hs, :ws].to(device=device, dtype=image.dtype)
    new_image[:, covered] = source[:, covered]

    own = instances.to(device)
    in_box = box_masks(own.gt_boxes.tensor, h, w, 1) >= 0.5
    box_area = in_box.flatten(1).sum(1).clamp(min=1)
    occlusion = (in_box & covered).flatten(1).sum(1) / box_area
    own = own[occlusion < max_occlusion]
    n_new = len(visible)
    ones = torch.ones(n_new, device=device)
    fields = {
        "gt_boxes": Boxes.cat([own.gt_boxes, BitMasks(visible).get_bounding_boxes()]),
        "gt_classes": torch.cat([own.gt_classes, classes.long()]),
        # what a pasted object covers is background for the image's own objects
        "gt_pseudo_masks": torch.cat([own.gt_pseudo_masks.bool() & ~covered, visible]),
        "gt_pseudo_valid": torch.cat([own.gt_pseudo_valid.bool() | covered, torch.ones_like(visible)]),
        "gt_pseudo_weights": torch.cat([own.gt_pseudo_weights, ones]),
        "gt_pasted": torch.cat([own.gt_pasted, ones.bool()]),
    }
    return new_image, Instances((h, w), **fields)
