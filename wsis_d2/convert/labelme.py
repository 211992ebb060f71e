"""labelme JSON files (polygons and rectangles) -> COCO.

Shapes sharing a ``group_id`` form one object; labels ``_background_`` and
``__ignore__`` (labelme's reserved names: no object class) are left out, and so
are other shape types (circles, lines, points); everything left out is reported.
"""
import json
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np

from ..data.images import read_checked_image
from .common import ConversionReport, mask_annotation

BACKGROUND_LABEL = "_background_"
IGNORE_LABEL = "__ignore__"


def _shape_mask(shape: dict, height: int, width: int) -> np.ndarray:
    points = np.asarray(shape["points"], np.float64)
    if shape.get("shape_type", "polygon") == "rectangle":
        (x0, y0), (x1, y1) = points.min(0), points.max(0)
        points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def convert_labelme(json_dir: str) -> Tuple[dict, ConversionReport]:
    """COCO dict of every labelme ``*.json`` in ``json_dir`` (``file_name`` relative to it)."""
    json_dir = Path(json_dir)
    if not json_dir.is_dir():
        raise FileNotFoundError(f"{json_dir}: no such folder")
    report = ConversionReport()
    images, annotations, categories = [], [], {}
    for path in sorted(json_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            file_name, height, width = data["imagePath"], int(data["imageHeight"]), int(data["imageWidth"])
            shapes = data["shapes"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            report.skip(str(path), f"not a labelme file ({type(e).__name__}: {e})")
            continue
        if not (json_dir / file_name).is_file():
            report.skip(str(path), f"its image {json_dir / file_name} is missing")
            continue
        image, problem = read_checked_image(str(json_dir / file_name))
        if problem is not None:
            report.skip(str(path), problem)
            continue
        if image.shape[:2] != (height, width):  # the pixels decide: the polygons are drawn on them
            report.note(str(path), f"imageHeight/imageWidth say {width}x{height}, but {file_name} is "
                        f"{image.shape[1]}x{image.shape[0]}: the image's size is used")
            height, width = image.shape[:2]
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        objects: Dict[tuple, List[np.ndarray]] = {}
        for k, shape in enumerate(shapes):
            label, kind = shape.get("label"), shape.get("shape_type", "polygon")
            if label in (BACKGROUND_LABEL, IGNORE_LABEL):
                report.skip(f"{path} shape {k}", f"label {label!r} is not an object class")
                continue
            if kind not in ("polygon", "rectangle") or len(shape.get("points", [])) < (3 if kind == "polygon" else 2):
                report.skip(f"{path} shape {k} ({label})", f"shape_type {kind!r} with {len(shape.get('points', []))} "
                            "points is not an area (polygons and rectangles only)")
                continue
            group = shape.get("group_id")
            key = (label, group) if group is not None else (label, f"shape{k}")
            objects.setdefault(key, []).append(_shape_mask(shape, height, width))
        for (label, _), masks in objects.items():
            mask = np.logical_or.reduce(masks)
            if not mask.any():
                report.skip(f"{path} ({label})", "its polygon covers no pixel")
                continue
            category_id = categories.setdefault(label, len(categories) + 1)
            annotations.append(mask_annotation(mask, len(annotations) + 1, image_id, category_id))
    coco = {"info": {"description": f"converted from labelme files in {json_dir}"}, "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in sorted(categories.items(), key=lambda x: x[1])]}
    return coco, report
