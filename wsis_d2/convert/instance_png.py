"""Folder of images + instance-id mask PNGs (0 = background, one id per object), as the
Penn-Fudan pedestrian set (``PNGImages/X.png`` + ``PedMasks/X_mask.png``) or VOC's
``SegmentationObject`` (palette PNGs, 255 = void boundary).

Masks are read with Pillow so that palette PNGs give their indices (OpenCV
would expand them to colours); 8- and 16-bit grey PNGs work too.

Void (neither object nor background) depends on the mask type unless ``ignore_value`` is given:
8-bit masks (palette or grey) use VOC's 255; 16- and 32-bit masks have no void value, so that id
255 is an object like any other. A mask whose only non-zero value is 255 (or a 1-bit PNG) is a
binary foreground mask, not instance ids: it is reported and its image left out, unless
``binary_components`` splits its foreground into one object per connected component.
"""
import os
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np
from PIL import Image

from ..data.images import read_checked_image
from .common import ConversionReport, mask_annotation

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = ("", "_mask", "_masks", "_instances")


def _find_mask(mask_dir: Path, stem: str):
    for suffix in MASK_SUFFIXES:
        path = mask_dir / f"{stem}{suffix}.png"
        if path.is_file():
            return path
    return None


# void value of each mask type when none is given: VOC's 255 for 8-bit masks, none for wider ones
DEFAULT_VOID = {"1": None, "P": 255, "L": 255, "I": None, "I;16": None, "I;16B": None, "I;16L": None}


def _read_ids(path: Path):
    """((H, W) integer instance ids, Pillow mode), or (None, None) when the file is not a
    single-channel index image."""
    try:
        with Image.open(path) as im:
            if im.mode not in DEFAULT_VOID:
                return None, None
            return np.array(im).astype(np.int64), im.mode
    except OSError:
        return None, None


def _looks_binary(ids: np.ndarray, mode: str) -> bool:
    values = np.unique(ids)
    return mode == "1" or (mode in ("L", "P") and set(values.tolist()) == {0, 255})


def convert_instance_pngs(image_dir: str, mask_dir: str, category: str = "object",
                          ignore_value: Optional[int] = None,
                          binary_components: bool = False) -> Tuple[dict, ConversionReport]:
    """COCO dict of every image in ``image_dir`` that has a mask ``<stem>[_mask].png`` in ``mask_dir``.

    Image ``file_name`` values are relative to ``image_dir``; mask value ``ignore_value`` is
    neither object nor background (None: by mask type, see the module docstring; -1: none).
    ``binary_components``: a binary 0/255 (or 1-bit) mask gives one object per 8-connected
    component of its foreground instead of being left out.
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
        image, problem = read_checked_image(str(path))
        ids, mode = _read_ids(mask_path)
        if problem is not None:
            report.skip(str(path), problem.split(": ", 1)[1])
            continue
        if ids is None:
            report.skip(str(mask_path), "not a single-channel (palette or grey) instance-id PNG")
            continue
        if ids.shape != image.shape[:2]:
            report.skip(str(mask_path), f"mask is {ids.shape[1]}x{ids.shape[0]}, image {image.shape[1]}x{image.shape[0]}")
            continue
        if _looks_binary(ids, mode):
            if not binary_components:
                report.skip(str(mask_path), "holds only 0 and 255 (or is 1-bit): a binary foreground mask, not "
                            "instance ids; left out (pass --binary-components to make one object per "
                            "connected component)")
                continue
            _, ids = cv2.connectedComponents((ids > 0).astype(np.uint8), connectivity=8)
            ids, void = ids.astype(np.int64), None
        else:
            void = DEFAULT_VOID[mode] if ignore_value is None else (None if ignore_value < 0 else ignore_value)
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": os.path.relpath(path, image_dir),
                       "height": int(ids.shape[0]), "width": int(ids.shape[1])})
        for instance_id in np.unique(ids):
            if instance_id == 0 or instance_id == void:
                continue
            annotations.append(mask_annotation(ids == instance_id, len(annotations) + 1, image_id, 1))
        if not ((ids > 0) & (ids != (-1 if void is None else void))).any():
            report.skip(str(mask_path), "no object (kept as an image without annotations)")
    coco = {"info": {"description": f"converted from {image_dir} + {mask_dir}"}, "images": images,
            "annotations": annotations, "categories": [{"id": 1, "name": category}]}
    return coco, report
