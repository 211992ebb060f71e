"""What the mask losses saw in one training step, kept for a picture (no drawing here).

A model asked to (``record_training_masks``, set by the trainer's picture hook every
``WSIS.VIS_PERIOD`` iterations) keeps a few instances of its batch: the image, the GT box and the
predicted mask probabilities the losses were computed on. The engine draws them; the losses know
nothing of it.
"""
from typing import Dict, List

import torch


def training_mask_snapshot(raw_images: torch.Tensor, image_sizes: List[tuple], gt_boxes: List[torch.Tensor],
                           im_inds: torch.Tensor, gt_inds: torch.Tensor, scores: torch.Tensor,
                           mask_logits: torch.Tensor, stride: int, input_format: str,
                           max_instances: int = 4) -> Dict:
    """At most ``max_instances`` GT instances of the batch, each with its best-scored positive's mask.

    Args:
        raw_images: (N, 3, Hp, Wp) the padded batch in pixel values (0..255, ``input_format`` order).
        image_sizes: N (h, w) of each image inside the padding.
        gt_boxes: N (G_i, 4) XYXY GT boxes in input pixels.
        im_inds, gt_inds, scores: (P,) image, GT instance and score (class x centerness) of each positive.
        mask_logits: (P, 1, Hp/s, Wp/s) the positives' mask logits at stride ``stride``.

    Returns:
        ``images``: list of (3, h, w) uint8 (the images used, cropped to their size), ``image_index``
        (k,) into it, ``boxes`` (k, 4) XYXY, ``mask_probs`` (k, Hp/s, Wp/s) float, ``stride``, ``format``;
        all on the CPU, detached. k = 0 when the batch has no positive.
    """
    with torch.no_grad():
        order = scores.argsort(descending=True)
        key = im_inds[order] * (int(gt_inds.max()) + 1 if len(gt_inds) else 1) + gt_inds[order]
        unique, inverse = torch.unique(key, return_inverse=True)
        position = torch.arange(len(key), device=key.device)
        first = torch.full((len(unique),), len(key), device=key.device).scatter_reduce(0, inverse, position, "amin")
        chosen = order[first.sort().values[:max_instances]]  # the best positive of each instance, best first
        used = list(dict.fromkeys(im_inds[chosen].tolist()))  # the batch's images in the picture, in order
        images = [raw_images[im, :, : image_sizes[im][0], : image_sizes[im][1]].clamp(0, 255).round()
                  .to(torch.uint8).cpu() for im in used]
        boxes = [gt_boxes[i][g] for i, g in zip(im_inds[chosen].tolist(), gt_inds[chosen].tolist())]
        return {
            "images": images,
            "image_index": torch.tensor([used.index(i) for i in im_inds[chosen].tolist()], dtype=torch.long),
            "boxes": torch.stack(boxes).detach().float().cpu() if boxes else torch.zeros((0, 4)),
            "mask_probs": mask_logits[chosen, 0].detach().float().sigmoid().cpu(),
            "stride": stride,
            "format": input_format,
        }
