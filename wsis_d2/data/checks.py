"""Annotation checks run once when a dataset is loaded.

Each problem raises :class:`AnnotationError` naming the JSON file, the
annotation (or image) id and the field, instead of a shape error deep inside
torch several minutes into training.
"""
import math
import os
from typing import Dict, Optional


class AnnotationError(ValueError):
    """A COCO annotation file holds something wsis-d2 cannot train from."""


# Boxes may exceed the image by this much (COCO boxes are floats rounded on export).
BOX_TOLERANCE_PX = 1.0
# Points may sit this far outside their box (float round-off of converted data).
POINT_TOLERANCE_PX = 1e-3


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_segmentation(segm, image: dict, where: str) -> None:
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            raise AnnotationError(f"{where}: field 'segmentation' is an RLE dict without 'counts' and 'size'")
        if list(segm["size"]) != [image["height"], image["width"]]:
            raise AnnotationError(
                f"{where}: field 'segmentation' has RLE size {list(segm['size'])}, "
                f"but its image is {[image['height'], image['width']]} (height, width)"
            )
        return
    if isinstance(segm, list):
        if len(segm) == 0:
            raise AnnotationError(f"{where}: field 'segmentation' is an empty polygon list")
        for poly in segm:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2 or not all(_is_number(v) for v in poly):
                raise AnnotationError(
                    f"{where}: field 'segmentation' holds a polygon that is not a flat list of "
                    "at least 3 (x, y) number pairs"
                )
        return
    raise AnnotationError(f"{where}: field 'segmentation' must be a polygon list or an RLE dict, "
                          f"got {type(segm).__name__}")


def _check_points(ann: dict, x0, y0, x1, y1, where: str) -> None:
    if ("point_coords" in ann) != ("point_labels" in ann):
        raise AnnotationError(f"{where}: 'point_coords' and 'point_labels' must come together")
    if "point_coords" not in ann:
        return
    coords, labels = ann["point_coords"], ann["point_labels"]
    if not isinstance(coords, list) or not isinstance(labels, list) or len(coords) != len(labels):
        raise AnnotationError(f"{where}: 'point_coords' and 'point_labels' must be lists of the same length")
    for k, (pt, label) in enumerate(zip(coords, labels)):
        if not (isinstance(pt, (list, tuple)) and len(pt) == 2 and all(_is_number(v) for v in pt)):
            raise AnnotationError(f"{where}: field 'point_coords[{k}]' is not an [x, y] pair of numbers")
        if label not in (0, 1) or isinstance(label, bool):
            raise AnnotationError(f"{where}: field 'point_labels[{k}]' is {label!r}, not 0 or 1")
        x, y = pt
        t = POINT_TOLERANCE_PX
        if not (x0 - t <= x <= x1 + t and y0 - t <= y <= y1 + t):
            raise AnnotationError(
                f"{where}: field 'point_coords[{k}]' = [{x:g}, {y:g}] lies outside its box "
                f"[{x0:g}, {y0:g}, {x1:g}, {y1:g}] (x0, y0, x1, y1)"
            )


def check_image(img: dict, json_file: str, image_root: Optional[str]) -> None:
    """One image entry: id, file name (existing under ``image_root`` when given), positive size."""
    where = f"{json_file}: image id {img.get('id')}"
    for field in ("id", "file_name", "height", "width"):
        if field not in img:
            raise AnnotationError(f"{where}: field '{field}' is missing")
    if not (_is_number(img["height"]) and _is_number(img["width"]) and img["height"] > 0 and img["width"] > 0):
        raise AnnotationError(f"{where}: fields 'height'/'width' must be positive numbers")
    if image_root is not None:
        path = os.path.join(image_root, img["file_name"])
        if not os.path.isfile(path):
            raise AnnotationError(f"{where}: field 'file_name' points to a missing image file {path}")


def check_annotation(ann: dict, images: Dict[int, dict], category_ids: set, json_file: str) -> None:
    """One annotation, against the file's images (by id) and category ids."""
    where = f"{json_file}: annotation id {ann.get('id')}"
    image = images.get(ann.get("image_id"))
    if image is None:
        raise AnnotationError(f"{where}: field 'image_id' = {ann.get('image_id')!r} is not an image id of this file")
    where += f" (image {image['file_name']})"
    if ann.get("category_id") not in category_ids:
        raise AnnotationError(f"{where}: field 'category_id' = {ann.get('category_id')!r} is not one of "
                              f"the categories {sorted(category_ids)}")
    if ann.get("iscrowd", 0) not in (0, 1):
        raise AnnotationError(f"{where}: field 'iscrowd' must be 0 or 1")
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise AnnotationError(f"{where}: field 'bbox' must be [x, y, width, height] numbers, got {bbox!r}")
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        raise AnnotationError(f"{where}: field 'bbox' = {bbox} has width or height <= 0")
    t = BOX_TOLERANCE_PX
    if x < -t or y < -t or x + w > image["width"] + t or y + h > image["height"] + t:
        raise AnnotationError(
            f"{where}: field 'bbox' = {bbox} lies outside the {image['width']}x{image['height']} image"
        )
    if "segmentation" in ann:
        _check_segmentation(ann["segmentation"], image, where)
    _check_points(ann, x, y, x + w, y + h, where)


def check_top_level(coco: dict, json_file: str) -> set:
    """The required top-level lists and the categories; returns the category ids."""
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise AnnotationError(f"{json_file}: top-level field '{key}' is missing or not a list")
    category_ids = set()
    for cat in coco["categories"]:
        if "id" not in cat or "name" not in cat:
            raise AnnotationError(f"{json_file}: a category lacks 'id' or 'name': {cat}")
        category_ids.add(cat["id"])
    return category_ids


def check_coco_instances(coco: dict, json_file: str, image_root: Optional[str]) -> None:
    """Check a loaded COCO instance dict; raise :class:`AnnotationError` on the first problem.

    Checked: required top-level lists; each image has an id, a file that exists
    under ``image_root`` and a positive size; each annotation refers to a known
    image and category, has a finite box with w, h > 0 inside the image, a
    well-formed segmentation (polygons or RLE of the image's size) when present,
    and points inside its box with labels in {0, 1} when present. Images
    without annotations are fine.
    """
    category_ids = check_top_level(coco, json_file)
    for img in coco["images"]:
        check_image(img, json_file, image_root)
    images = {img["id"]: img for img in coco["images"]}
    for ann in coco["annotations"]:
        check_annotation(ann, images, category_ids, json_file)
