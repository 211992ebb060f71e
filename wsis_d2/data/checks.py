"""Annotation checks run once when a dataset is loaded.

Each problem raises :class:`AnnotationError` naming the JSON file, the
annotation (or image) id and the field, instead of a shape error deep inside
torch several minutes into training.
"""
import math
import os
from typing import Dict, Optional

import numpy as np


class AnnotationError(ValueError):
    """A COCO annotation file holds something wsis-d2 cannot train from."""


# Boxes may exceed the image by this much (COCO boxes are floats rounded on export).
BOX_TOLERANCE_PX = 1.0
# Points may sit this far outside their box (float round-off of converted data).
POINT_TOLERANCE_PX = 1e-3


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_id(v) -> bool:
    """An image or category id: an integer or a string (lists or floats cannot key pycocotools' dicts)."""
    return _is_int(v) or isinstance(v, str)


def _check_object(value, json_file: str, field: str, index: int) -> None:
    """Entry ``index`` of the top-level list ``field`` must be a JSON object before any of its fields is read."""
    if not isinstance(value, dict):
        raise AnnotationError(f"{json_file}: {field}[{index}] must be a JSON object, "
                              f"got a {type(value).__name__}: {value!r:.60}")


# A run length that needs more characters than this would not fit in 64 bits (5 data bits per character).
MAX_RLE_COUNT_CHARS = 12


def rle_counts_from_string(counts) -> np.ndarray:
    """Run lengths (int64) of a compressed COCO RLE ``counts`` string (``str`` as in JSON, or ``bytes``).

    pycocotools has no validator for this format: it decodes any string, so a
    corrupt one becomes a wrong mask without an error. This reads the format of
    the COCO API (``rleFrString``) so that the checks can look at the runs. Each
    count is a chain of characters with value ``ord(ch) - 48`` in 0..63, five
    data bits each, least significant first; bit 0x20 says another character of
    the same count follows, and on the last character bit 0x10 is the sign. From
    the fourth count on, the stored number is the difference to the count two
    positions earlier (runs of the same value, 0s or 1s, are alike in size).
    Vectorised over the characters: a training file may hold a million RLEs.

    Raises:
        ValueError: a character is out of range, a count is too long, or the string ends inside a count.
    """
    raw = counts if isinstance(counts, bytes) else counts.encode("latin-1", errors="replace")
    chars = np.frombuffer(raw, np.uint8).astype(np.int64) - 48
    out_of_range = np.flatnonzero((chars < 0) | (chars > 63))
    if out_of_range.size:
        pos = int(out_of_range[0])
        raise ValueError(f"character {chr(raw[pos])!r} at position {pos} is outside '0'..'o'")
    if chars.size == 0:
        return np.zeros(0, np.int64)
    last = (chars & 0x20) == 0
    if not last[-1]:
        raise ValueError("the string ends in the middle of a count")
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > MAX_RLE_COUNT_CHARS:
        raise ValueError(f"a count spans {lengths.max()} characters (at most {MAX_RLE_COUNT_CHARS})")
    place = np.arange(chars.size) - np.repeat(starts, lengths)
    values = np.add.reduceat((chars & 0x1F) << (5 * place), starts)
    negative = (chars[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])  # two's complement over the bits read
    runs = values.copy()
    # runs[i] = values[i] + runs[i - 2] for i >= 3: a running sum over the odd places and over the even
    # places from 2 on
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def _rle_runs(counts, where: str) -> np.ndarray:
    """The run lengths of an RLE's ``counts``: an uncompressed list or a compressed string."""
    if isinstance(counts, list):
        if not all(_is_int(v) for v in counts):
            raise AnnotationError(f"{where}: field 'segmentation' is an RLE whose 'counts' list holds "
                                  "something other than integers")
        return np.asarray(counts, np.int64)
    if isinstance(counts, (str, bytes)):
        try:
            return rle_counts_from_string(counts)
        except ValueError as e:
            raise AnnotationError(f"{where}: field 'segmentation' is an RLE whose 'counts' string is "
                                  f"malformed: {e}") from None
    raise AnnotationError(f"{where}: field 'segmentation' is an RLE whose 'counts' must be a string or a list "
                          f"of run lengths, got {type(counts).__name__}")


def _check_rle(segm: dict, image: dict, where: str) -> None:
    """An RLE of the image's size whose runs cover each of its pixels exactly once."""
    if "counts" not in segm or "size" not in segm:
        raise AnnotationError(f"{where}: field 'segmentation' is an RLE dict without 'counts' and 'size'")
    size = segm["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        raise AnnotationError(f"{where}: field 'segmentation' has RLE size {size!r}, not [height, width] integers")
    if size != [image["height"], image["width"]]:
        raise AnnotationError(
            f"{where}: field 'segmentation' has RLE size {size}, "
            f"but its image is {[image['height'], image['width']]} (height, width)"
        )
    runs = _rle_runs(segm["counts"], where)
    if runs.size and runs.min() < 0:
        raise AnnotationError(f"{where}: field 'segmentation' is an RLE with a negative run length {runs.min()}")
    # pycocotools decodes runs of any total without complaint: too few leave pixels out, too many spill over
    if int(runs.sum()) != size[0] * size[1]:
        raise AnnotationError(f"{where}: field 'segmentation' is an RLE whose run lengths sum to {runs.sum()}, "
                              f"not height x width = {size[0] * size[1]}")


def _check_segmentation(segm, image: dict, where: str) -> None:
    if isinstance(segm, dict):
        _check_rle(segm, image, where)
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


def check_image(img: dict, json_file: str, image_root: Optional[str], index: int) -> None:
    """Image entry ``index``: an object with an id, a file name (existing under ``image_root`` when
    given) and a positive size."""
    _check_object(img, json_file, "images", index)
    if "id" not in img:
        raise AnnotationError(f"{json_file}: images[{index}]: field 'id' is missing")
    if not is_id(img["id"]):
        raise AnnotationError(f"{json_file}: images[{index}]: field 'id' = {img['id']!r} "
                              "must be an integer or a string")
    where = f"{json_file}: image id {img['id']}"
    for field in ("file_name", "height", "width"):
        if field not in img:
            raise AnnotationError(f"{where}: field '{field}' is missing")
    if not isinstance(img["file_name"], str) or not img["file_name"]:
        raise AnnotationError(f"{where}: field 'file_name' = {img['file_name']!r} must be a non-empty string")
    if not (_is_number(img["height"]) and _is_number(img["width"]) and img["height"] > 0 and img["width"] > 0):
        raise AnnotationError(f"{where}: fields 'height'/'width' must be positive numbers")
    if image_root is not None:
        path = os.path.join(image_root, img["file_name"])
        if not os.path.isfile(path):
            raise AnnotationError(f"{where}: field 'file_name' points to a missing image file {path}")


def duplicate_image_ids(images: list, json_file: str) -> Dict[object, str]:
    """{image id: error message} for each id that more than one image entry uses.

    Annotations name their image by id only, so with a repeated id they would be
    drawn on (or checked against) the wrong picture. Entries that are not objects
    or have no valid id are skipped here; :func:`check_image` reports them.
    """
    names: Dict[object, list] = {}
    for img in images:
        if isinstance(img, dict) and is_id(img.get("id")):
            names.setdefault(img["id"], []).append(str(img.get("file_name")))
    return {
        image_id: (f"{json_file}: image id {image_id} is used by {len(files)} image entries "
                   f"(file_name {', '.join(files)}); image ids must be unique")
        for image_id, files in names.items() if len(files) > 1
    }


def _annotation_where(ann: dict, json_file: str, index: int) -> str:
    # annotation ids are optional in practice, so the position in the file stands in for a missing one
    return f"{json_file}: annotation id {ann['id']}" if "id" in ann else f"{json_file}: annotations[{index}]"


def annotation_image_id(ann: dict, json_file: str, index: int):
    """The ``image_id`` of annotation entry ``index``, once the entry is an object and the field an id."""
    _check_object(ann, json_file, "annotations", index)
    image_id = ann.get("image_id")
    if not is_id(image_id):
        raise AnnotationError(f"{_annotation_where(ann, json_file, index)}: field 'image_id' = {image_id!r} "
                              "must be an integer or a string (an image id)")
    return image_id


def check_annotation(ann: dict, images: Dict[int, dict], category_ids: set, json_file: str, index: int) -> None:
    """Annotation entry ``index``, against the file's images (by id) and category ids."""
    image_id = annotation_image_id(ann, json_file, index)
    where = _annotation_where(ann, json_file, index)
    image = images.get(image_id)
    if image is None:
        raise AnnotationError(f"{where}: field 'image_id' = {image_id!r} is not an image id of this file")
    where += f" (image {image['file_name']})"
    category_id = ann.get("category_id")
    if not is_id(category_id) or category_id not in category_ids:
        raise AnnotationError(f"{where}: field 'category_id' = {category_id!r} is not one of "
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


def _check_one_id_kind(ids, json_file: str, what: str) -> None:
    # detectron2's load_coco_json (and the category list in error messages) sorts ids: a mix of ints and strings fails
    if len({type(i) for i in ids}) > 1:
        raise AnnotationError(f"{json_file}: field 'id' of the {what} entries mixes integers and strings; "
                              "use one kind")


def check_top_level(coco: dict, json_file: str) -> set:
    """The top-level object, its required lists and the categories; returns the category ids."""
    if not isinstance(coco, dict):
        raise AnnotationError(f"{json_file}: the top level must be a JSON object with 'images', 'annotations' "
                              f"and 'categories', got a {type(coco).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise AnnotationError(f"{json_file}: top-level field '{key}' is missing or not a list")
    category_ids = set()
    for index, cat in enumerate(coco["categories"]):
        _check_object(cat, json_file, "categories", index)
        if "id" not in cat or "name" not in cat:
            raise AnnotationError(f"{json_file}: categories[{index}] lacks 'id' or 'name': {cat}")
        if not is_id(cat["id"]):
            raise AnnotationError(f"{json_file}: categories[{index}]: field 'id' = {cat['id']!r} "
                                  "must be an integer or a string")
        category_ids.add(cat["id"])
    _check_one_id_kind(category_ids, json_file, "category")
    return category_ids


def _check_annotation_ids(annotations: list, json_file: str) -> None:
    # pycocotools indexes a training file's annotations by 'id' and detectron2 asserts they are unique;
    # both fail deep inside their loaders otherwise (autolabel, which tracks positions, does not need this)
    first_index: Dict[object, int] = {}
    for index, ann in enumerate(annotations):
        if not is_id(ann.get("id")):
            raise AnnotationError(f"{json_file}: annotations[{index}]: field 'id' = {ann.get('id')!r} "
                                  "is missing or not an integer or a string")
        if ann["id"] in first_index:
            raise AnnotationError(f"{json_file}: annotation id {ann['id']} is used by annotations"
                                  f"[{first_index[ann['id']]}] and annotations[{index}]; annotation ids must be unique")
        first_index[ann["id"]] = index


def check_coco_instances(coco: dict, json_file: str, image_root: Optional[str]) -> None:
    """Check a loaded COCO instance dict; raise :class:`AnnotationError` on the first problem.

    Checked: the top level is an object with the required lists of objects; each
    category and image has an integer or string id (one kind per list); each
    image has a unique id, a file that exists under ``image_root`` and a positive
    size; each annotation refers to a known image and category, has a finite box
    with w, h > 0 inside the image, a well-formed segmentation (polygons, or an
    RLE of the image's size whose runs cover it exactly) when present, and points
    inside its box with labels in {0, 1} when present, and a unique id. Images
    without annotations are fine.
    """
    category_ids = check_top_level(coco, json_file)
    for index, img in enumerate(coco["images"]):
        check_image(img, json_file, image_root, index)
    duplicates = duplicate_image_ids(coco["images"], json_file)
    if duplicates:
        raise AnnotationError(next(iter(duplicates.values())))
    images = {img["id"]: img for img in coco["images"]}
    _check_one_id_kind(images, json_file, "image")
    for index, ann in enumerate(coco["annotations"]):
        check_annotation(ann, images, category_ids, json_file, index)
    _check_annotation_ids(coco["annotations"], json_file)
