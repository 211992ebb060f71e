"""Folder of images + instance-id mask PNGs (0 = background, one id per object), as the
Penn-Fudan pedestrian set (``PNGImages/X.png`` + ``PedMasks/X_mask.png``) or VOC's
``SegmentationObject`` (palette PNGs, 255 = void boundary).

Masks are read with Pillow so that palette PNGs give their indices (OpenCV
would expand them to colours); 8- and 16-bit grey PNGs work too.
"""
import os
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np
from PIL import Image

from .common import ConversionReport, mask_annotation

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = ("", "_mask", "_masks", "_instances")


def _find_mask(mask_dir: Path, stem: str):
    for suffix in MASK_SUFFIXES:
        path = mask_dir / f"{stem}{suffix}.png"
        if path.is_file():
            return path
    return None


def _read_ids(path: Path):
    """(H, W) integer instance ids, or None when the file is not a single-channel index image."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I", "I;16", "I;16B", "I;16L", "1"):
                return None
            return np.array(im).astype(np.int64)
    except OSError:
        return None


def convert_instance_pngs(image_dir: str, mask_dir: str, category: str = "object",
                          ignore_value: int = 255) -> Tuple[dict, ConversionReport]:
    """COCO dict of every image in ``image_dir`` that has a mask ``<stem>[_mask].png`` in ``mask_dir``.

    Image ``file_name`` values are relative to ``image_dir``; mask value
    ``ignore_value`` (VOC's void) is neither object nor background (-1: none).
    """
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
    report = ConversionReport()
    images, annotations = [], []
    for path in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
        mask_path = _find_mask(mask_dir, path.stem)
        if mask_path is None:
            report.skip(str(path), f"no mask {path.stem}.png or {path.stem}_mask.png in {mask_dir}")
            continue
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        ids = _read_ids(mask_path)
        if image is None:
            report.skip(str(path), "cannot be read as an image")
            continue
        if ids is None:
            report.skip(str(mask_path), "not a single-channel (palette or grey) instance-id PNG")
            continue
        if ids.shape != image.shape[:2]:
            report.skip(str(mask_path), f"mask is {ids.shape[1]}x{ids.shape[0]}, image {image.shape[1]}x{image.shape[0]}")
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": os.path.relpath(path, image_dir),
                       "height": int(ids.shape[0]), "width": int(ids.shape[1])})
        for instance_id in np.unique(ids):
            if instance_id == 0 or instance_id == ignore_value:
                continue
            annotations.append(mask_annotation(ids == instance_id, len(annotations) + 1, image_id, 1))
        if not (ids > 0).any():
            report.skip(str(mask_path), "no object (kept as an image without annotations)")
    coco = {"info": {"description": f"converted from {image_dir} + {mask_dir}"}, "images": images,
            "annotations": annotations, "categories": [{"id": 1, "name": category}]}
    return coco, report
