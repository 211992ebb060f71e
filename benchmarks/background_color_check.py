"""How well BoxTeacher's optional background-colour check separates objects from background inside boxes.

For every object of the first N training images of a dataset with masks, at the mask branch's
stride: the share of the in-box cells on the object (GT mask >= half the cell) and off it that
:func:`wsis_d2.modeling.losses.background_color.background_colored` flags as background-coloured.
The GT masks are read here only, to measure; the loss never sees them.

    python benchmarks/background_color_check.py                      # shapes train, 200 images
    python benchmarks/background_color_check.py --thresh 0.5 --band 3
"""
import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F
from detectron2.data import transforms as T
from detectron2.structures import BoxMode

from wsis_d2.modeling.losses.background_color import background_colored
from wsis_d2.modeling.losses.box_targets import box_masks
from wsis_d2.modeling.losses.pairwise import rgb_to_lab


def resized(image_rgb: np.ndarray, annotations: list, short_side: int):
    """The image and its annotations (masks as RLE, boxes) with the shorter side at ``short_side`` pixels,
    as detectron2's ResizeShortestEdge gives them to the model in training."""
    resize = T.ResizeShortestEdge(short_side, max_size=sys.maxsize).get_transform(image_rgb)
    out = []
    for a in annotations:
        mask = resize.apply_segmentation(mask_util.decode(a["segmentation"]))
        x0, y0, x1, y1 = resize.apply_box(BoxMode.convert(np.array([a["bbox"]]), BoxMode.XYWH_ABS, BoxMode.XYXY_ABS))[0]
        out.append({"segmentation": mask_util.encode(np.asfortranarray(mask)),
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})
    return resize.apply_image(image_rgb), out


def cell_shares(image_rgb: np.ndarray, annotations: list, stride: int, band: int, samples: int, thresh: float):
    """-> (flagged on object, on-object cells, flagged off object, off-object cells), in-box cells only."""
    h, w = image_rgb.shape[:2]
    pad = (0, (-w) % stride, 0, (-h) % stride)
    rgb = F.pad(torch.from_numpy(image_rgb).permute(2, 0, 1)[None].float() / 255.0, pad)
    lab = rgb_to_lab(F.avg_pool2d(rgb, stride))
    masks = torch.from_numpy(np.stack([mask_util.decode(a["segmentation"]) for a in annotations])).float()
    on_object = F.avg_pool2d(F.pad(masks[:, None], pad), stride) >= 0.5
    boxes = torch.tensor([[x, y, x + bw, y + bh] for x, y, bw, bh in (a["bbox"] for a in annotations)])
    in_box = box_masks(boxes, *lab.shape[-2:], stride)[:, None] >= 0.5
    valid = torch.ones_like(in_box)
    flagged = background_colored(lab.expand(len(annotations), -1, -1, -1), in_box, valid, band, samples, thresh)
    on, off = on_object & in_box, ~on_object & in_box
    return (flagged & on).sum().item(), on.sum().item(), (flagged & off).sum().item(), off.sum().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", default="datasets/shapes/annotations/train_full.json")
    parser.add_argument("--images", default="datasets/shapes", help="folder the annotations' file names start in")
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--band", type=int, default=2)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--thresh", type=float, default=0.3)
    parser.add_argument("--short-side", type=int, default=0,
                        help="resize each image's shorter side to this first (the shapes configs train at 112-144)")
    parser.add_argument("--category", type=int, default=0, help="only objects of this category id (0: all)")
    args = parser.parse_args()

    data = json.loads(Path(args.annotations).read_text())
    by_image = defaultdict(list)
    for a in data["annotations"]:
        if args.category in (0, a["category_id"]):
            by_image[a["image_id"]].append(a)
    totals = np.zeros(4)
    images = [im for im in data["images"] if by_image[im["id"]]][: args.num_images]
    for image in images:
        path = Path(args.images) / image["file_name"]
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise FileNotFoundError(f"{args.annotations}: image {image['id']} file_name {path} cannot be read")
        rgb, annotations = bgr[:, :, ::-1].copy(), by_image[image["id"]]
        if args.short_side:
            rgb, annotations = resized(rgb, annotations, args.short_side)
        totals += cell_shares(rgb, annotations, args.stride, args.band, args.samples, args.thresh)
    print(f"{len(images)} images, short side {args.short_side or 'as stored'}, category {args.category or 'all'}, "
          f"stride {args.stride}, band {args.band}, {args.samples} samples, "
          f"threshold {args.thresh}: background-coloured share of in-box cells on the object "
          f"{totals[0] / totals[1]:.3f} ({int(totals[1])} cells), off it {totals[2] / totals[3]:.3f} "
          f"({int(totals[3])} cells)")


if __name__ == "__main__":
    main()
