"""What the converters share: the COCO skeleton, one annotation from a mask, the skip report."""
from typing import List

import numpy as np
import pycocotools.mask as mask_util

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
