"""labelme JSON files (polygons, rectangles, points) -> COCO.

Objects, box-only rectangles and clicked points follow :mod:`wsis_d2.convert.objects`: shapes sharing
a label and a ``group_id`` form one object; a polygon (with any rectangles grouped with it) gives a
mask, rectangles alone a box-only object (no ``segmentation``, never a filled box); ``point`` shapes
become the PointSup points of the box they lie in (or of the object their ``group_id`` links them to),
positive or negative by their label. Labels ``_background_`` and ``__ignore__`` (labelme's reserved
names: no object class) are left out, and so are other shape types (circles, lines, line strips);
everything left out is reported with its file and shape index.
"""
import json
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np

from ..data.images import read_checked_image
from .common import ConversionReport, coco_dict, note_mixed_kinds
from .objects import Shape, complete_point_lists, shapes_to_annotations

BACKGROUND_LABEL = "_background_"
IGNORE_LABEL = "__ignore__"


def _polygon_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def _shape(shape: dict, where: str, height: int, width: int) -> Tuple[Shape, str]:
    """(the :class:`Shape` of a labelme shape, "") or (None, why it is left out)."""
    label, kind = shape.get("label"), shape.get("shape_type") or "polygon"
    if label in (BACKGROUND_LABEL, IGNORE_LABEL):
        return None, f"label {label!r} is not an object class"
    if not isinstance(label, str) or not label.strip():
        return None, "no label"
    try:
        points = np.asarray(shape.get("points", []), np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return None, f"points {str(shape.get('points'))[:40]} are not [x, y] pairs"
    needed = {"polygon": 3, "rectangle": 2, "point": 1}.get(kind)
    if needed is None or len(points) < needed:
        return None, (f"shape_type {kind!r} with {len(points)} points is not an area, a box or a point "
                      "(polygons, rectangles and points only)")
    group = shape.get("group_id")
    if kind == "polygon":
        return Shape(where, label, group, "area", mask=_polygon_mask(points, height, width)), ""
    if kind == "rectangle":
        (x0, y0), (x1, y1) = points.min(0), points.max(0)
        return Shape(where, label, group, "box", box=(x0, y0, x1, y1)), ""
    if len(points) != 1:
        return None, f"point shape with {len(points)} points"
    return Shape(where, label, group, "point", point=tuple(points[0])), ""


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
        drawn = []
        for k, shape in enumerate(shapes):
            where = f"{path} shape {k}" + (f" ({shape.get('label')})" if isinstance(shape, dict) else "")
            item, why = _shape(shape, where, height, width) if isinstance(shape, dict) else (None, "not an object")
            if item is None:
                report.skip(where, why)
                continue
            drawn.append(item)
        annotations += shapes_to_annotations(drawn, image_id, height, width, categories, len(annotations) + 1,
                                             report)
    complete_point_lists(annotations, report)
    note_mixed_kinds(annotations, report, str(json_dir))
    return coco_dict(f"converted from labelme files in {json_dir}", images, annotations, categories), report
