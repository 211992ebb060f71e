"""What the converters share: the COCO skeleton, one annotation from a mask or a box, the image size
as detectron2 reads it, the skip report."""
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from ..data.rle import encode_mask


class ConversionReport:
    """Items left out of a conversion, each with the file and the reason, and notes on items converted
    otherwise than their input says."""

    def __init__(self):
        self.skipped: List[str] = []
        self.notes: List[str] = []  # converted, but not as the input says

    def skip(self, where: str, why: str) -> None:
        self.skipped.append(f"{where}: {why}")

    def note(self, where: str, what: str) -> None:
        self.notes.append(f"{where}: {what}")

    def as_dict(self) -> dict:
        return {"skipped": len(self.skipped), "reasons": self.skipped, "notes": self.notes}


def mask_annotation(mask: np.ndarray, ann_id: int, image_id: int, category_id: int) -> dict:
    """A COCO annotation (RLE, tight box, area) of a non-empty bool (H, W) mask."""
    rle = encode_mask(mask)
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
            "segmentation": rle, "area": float(mask_util.area(rle)),
            "bbox": [float(v) for v in mask_util.toBbox(rle)]}


def box_annotation(box: Sequence[float], ann_id: int, image_id: int, category_id: int) -> dict:
    """A box-only COCO annotation of ``box`` (x0, y0, x1, y1): no ``segmentation`` key (never a filled
    box), ``area`` the box's area, as the ``box`` view of :mod:`wsis_d2.data.views` writes it."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
            "area": (x1 - x0) * (y1 - y0), "bbox": [x0, y0, x1 - x0, y1 - y0]}


def note_mixed_kinds(annotations: list, report: ConversionReport, where: str) -> None:
    """Note when some objects have masks and others boxes only: each keeps its own kind (nothing is
    filled in), which a model trained on one kind of label everywhere cannot use as is."""
    masks = sum("segmentation" in a for a in annotations)
    if 0 < masks < len(annotations):
        report.note(where, f"{masks} objects with masks and {len(annotations) - masks} with boxes only: "
                    "'wsis-d2 views --views box' makes boxes of all of them for the box-supervised methods")


def coco_dict(description: str, images: list, annotations: list, categories: dict) -> dict:
    """The COCO skeleton; ``categories`` maps name -> id."""
    return {"info": {"description": description}, "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in sorted(categories.items(), key=lambda x: x[1])]}


# EXIF orientations for which detectron2's reader (it applies the EXIF rotation) swaps width and height
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)


def image_size(path: Path) -> Tuple[Optional[Tuple[int, int]], int]:
    """((height, width) as detectron2 will read the image, EXIF orientation), or (None, 0) if unreadable.

    Only the header is read."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = int(im.getexif().get(_EXIF_ORIENTATION) or 1)
    except (OSError, ValueError):
        return None, 0
    if orientation in _TRANSPOSED:
        width, height = height, width
    return (height, width), orientation
