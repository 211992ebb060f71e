"""VGG Image Annotator (VIA 1.x and 2.x) region JSON -> COCO, as detectron2's balloon tutorial data ships.

A VIA file maps a key per image to ``{"filename", "regions", ...}``; a VIA 2 project file holds that
map under ``_via_img_metadata``, and ``regions`` is a dict (VIA 1) or a list (VIA 2). Each region is one
object: ``polygon`` (``all_points_x`` / ``all_points_y``), ``rect`` (``x, y, width, height``),
``circle`` (``cx, cy, r``) and ``ellipse`` (``cx, cy, rx, ry[, theta]``) are areas; a polygon with
fewer than 3 points, ``polyline`` and ``point`` are not and are left out, each named in the report
with its file and image. VIA stores no image size: it is read from each image's header.

Coordinates are VIA's pixel indices: a shape is filled with the pixels on its outline included,
as the labelme converter does (sub-pixel coordinates are kept to 1/16 pixel).
"""
import json
import math
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

from .common import ConversionReport, image_size, mask_annotation

# cv2 draws with fixed-point coordinates: 4 fractional bits
_SHIFT = 4


def _fixed(values) -> np.ndarray:
    return np.round(np.asarray(values, np.float64) * (1 << _SHIFT)).astype(np.int32)


def _fill_polygon(xs, ys, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.stack([_fixed(xs), _fixed(ys)], 1)], 1, shift=_SHIFT)
    return mask.astype(bool)


def _region_mask(shape: dict, height: int, width: int) -> Tuple[Optional[np.ndarray], str]:
    """(bool (H, W) mask of a VIA region's shape, "") or (None, why it is not an area)."""
    kind = shape.get("name")
    try:
        if kind in ("polygon", "polygon_closed"):
            xs, ys = shape["all_points_x"], shape["all_points_y"]
            if len(xs) != len(ys):
                return None, f"polygon with {len(xs)} x and {len(ys)} y coordinates"
            if len(xs) < 3:
                return None, f"polygon with {len(xs)} point(s) is not an area (needs at least 3)"
            return _fill_polygon([float(v) for v in xs], [float(v) for v in ys], height, width), ""
        if kind == "rect":
            x, y, w, h = (float(shape[k]) for k in ("x", "y", "width", "height"))
            return _fill_polygon([x, x + w, x + w, x], [y, y, y + h, y + h], height, width), ""
        if kind in ("circle", "ellipse"):
            cx, cy = float(shape["cx"]), float(shape["cy"])
            rx, ry = (float(shape["r"]),) * 2 if kind == "circle" else (float(shape["rx"]), float(shape["ry"]))
            angle = math.degrees(float(shape.get("theta", 0.0)))
            mask = np.zeros((height, width), np.uint8)
            cv2.ellipse(mask, tuple(_fixed([cx, cy]).tolist()), tuple(_fixed([rx, ry]).tolist()), angle, 0, 360, 1,
                        thickness=-1, shift=_SHIFT)
            return mask.astype(bool), ""
    except (KeyError, TypeError, ValueError) as e:
        return None, f"{kind} region without usable coordinates ({type(e).__name__}: {e})"
    return None, f"shape {kind!r} is not an area (polygons, rects, circles and ellipses only)"


def _category(region: dict, attribute: Optional[str], default: str) -> Tuple[Optional[str], str]:
    """(category name of a region, "") or (None, why not): ``region_attributes[attribute]`` (a text, or
    the one checked option of a checkbox / radio attribute), or ``default`` without ``attribute``."""
    if attribute is None:
        return default, ""
    value = (region.get("region_attributes") or {}).get(attribute)
    if isinstance(value, dict):
        checked = [k for k, v in value.items() if v]
        value = checked[0] if len(checked) == 1 else None
    if not isinstance(value, str) or not value.strip():
        return None, f"no single value of region attribute {attribute!r}"
    return value.strip(), ""


def _images_metadata(data) -> Optional[dict]:
    if isinstance(data, dict) and isinstance(data.get("_via_img_metadata"), dict):
        data = data["_via_img_metadata"]  # a VIA 2 project file
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "filename" in v for v in data.values()):
        return None
    return data


def convert_via(json_file: str, image_dir: Optional[str] = None, category: str = "object",
                category_attribute: Optional[str] = None) -> Tuple[dict, ConversionReport]:
    """COCO dict of a VIA region JSON (RLE masks; ``file_name`` relative to ``image_dir``).

    Args:
        json_file: VIA 1 region export (``via_region_data.json``) or VIA 2 project / JSON export.
        image_dir: folder of the images (default: the JSON file's folder).
        category: the objects' category name when ``category_attribute`` is None.
        category_attribute: name of the region attribute holding each object's category.

    An image without regions is kept (an image without objects) and noted in the report; a missing
    or unreadable image and every region that is not an area are left out and reported.
    """
    json_file = Path(json_file)
    if not json_file.is_file():
        raise FileNotFoundError(f"{json_file}: no such file")
    image_dir = Path(image_dir) if image_dir else json_file.parent
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: no such folder")
    try:
        metadata = _images_metadata(json.loads(json_file.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{json_file}: not a JSON file ({e})") from None
    if metadata is None:
        raise ValueError(f"{json_file}: not a VIA region file (expected a map of images with 'filename' and "
                         "'regions', or a VIA 2 project with '_via_img_metadata')")
    report = ConversionReport()
    images, annotations, categories = [], [], {}
    for entry in metadata.values():
        file_name = entry["filename"]
        where = f"{json_file} image {file_name}"
        size, orientation = image_size(image_dir / file_name)
        if size is None:
            report.skip(where, f"{image_dir / file_name} is missing or not an image")
            continue
        height, width = size
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        if orientation != 1:
            report.skip(where, f"EXIF orientation {orientation}: detectron2 reads it rotated, so its regions "
                        "must have been drawn on the rotated image (kept)")
        regions = entry.get("regions") or []
        if isinstance(regions, dict):  # VIA 1: {"0": region, "1": region, ...}
            regions = [regions[k] for k in sorted(regions, key=lambda k: int(k) if str(k).isdigit() else k)]
        if not regions:
            report.skip(where, "no region (kept as an image without objects)")
        for k, region in enumerate(regions):
            name, why = _category(region, category_attribute, category)
            mask = None
            if name is not None:
                mask, why = _region_mask(region.get("shape_attributes") or {}, height, width)
            if mask is not None and not mask.any():
                mask, why = None, "its shape covers no pixel of the image"
            if mask is None:
                report.skip(f"{where} region {k}", why)
                continue
            category_id = categories.setdefault(name, len(categories) + 1)
            annotations.append(mask_annotation(mask, len(annotations) + 1, image_id, category_id))
    if not categories and category_attribute is None:
        categories[category] = 1
    coco = {"info": {"description": f"converted from VIA regions in {json_file}"}, "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": n} for n, i in sorted(categories.items(), key=lambda x: x[1])]}
    return coco, report
