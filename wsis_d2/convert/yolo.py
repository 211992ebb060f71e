"""Ultralytics YOLO label files (segmentation polygons and detection boxes) -> COCO.

One ``<stem>.txt`` per image, one object per line, coordinates normalised to [0, 1] by the image's
width and height:

- ``class x1 y1 x2 y2 ... xn yn`` (n >= 3): a polygon (YOLO segmentation), rasterised as a COCO polygon
  (pycocotools), the convention Ultralytics' COCO converter takes its polygons from;
- ``class cx cy w h``: a box (YOLO detection), written box-only: ``bbox`` and the box's ``area``, no
  ``segmentation`` key (never a filled box), as :func:`wsis_d2.data.views.box_view` writes boxes.

A folder may mix both; each object keeps its own kind (a note says so). The class names come from a
``data.yaml`` (``names:`` a list, or a dict of index -> name) or a ``classes.txt`` (one name a line),
given or found beside the labels, in their parent or grandparent folder. Images are found by the label
file's stem in the images folder (default: the labels folder's path with its last ``labels``
component replaced by ``images``, Ultralytics' layout ``images/train`` <-> ``labels/train``); their
size is read from the image header, EXIF rotation applied as detectron2 and Ultralytics do. An image
without a label file is an image without objects (Ultralytics' background images). Every line left
out is reported with its file and line number.
"""
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
import yaml

from .common import (ConversionReport, box_annotation, coco_dict, image_size, mask_annotation,
                     note_mixed_kinds)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
NAMES_FILES = ("data.yaml", "dataset.yaml", "classes.txt")
# normalised coordinates may exceed [0, 1] by this much (rounding of the exporter); then clipped
COORD_TOLERANCE = 1e-3


def _names_from_file(path: Path) -> List[str]:
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not a YAML file ({str(e).splitlines()[0]})") from None
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            try:
                indices = sorted(int(k) for k in names)
            except (TypeError, ValueError):
                raise ValueError(f"{path}: 'names' keys must be class indices 0, 1, ...") from None
            if indices != list(range(len(indices))):
                raise ValueError(f"{path}: 'names' keys {indices} are not 0 .. {len(indices) - 1}")
            names = [names[k] if k in names else names[str(k)] for k in indices]
        if not isinstance(names, list) or not names:
            raise ValueError(f"{path}: no 'names' list or dict of class names")
    else:
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    names = [str(n) for n in names]
    if not names:
        raise ValueError(f"{path}: no class name in it")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{path}: class name(s) {', '.join(repeated)} given more than once")
    return names


def find_names_file(label_dir: Path) -> Optional[Path]:
    """The first :data:`NAMES_FILES` in ``label_dir``, its parent or its grandparent."""
    for folder in (label_dir, label_dir.parent, label_dir.parent.parent):
        for name in NAMES_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def default_image_dir(label_dir: Path) -> Optional[Path]:
    """``label_dir`` with its last ``labels`` component replaced by ``images`` (None without one)."""
    parts = list(label_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "labels":
            parts[i] = "images"
            return Path(*parts)
    return None


def _parse_line(line: str, num_classes: int) -> Tuple[Optional[int], Optional[np.ndarray], str]:
    """(class index, normalised values (4 for a box, 2n for a polygon), "") or (None, None, why)."""
    fields = line.split()
    n = len(fields) - 1
    if n != 4 and (n < 6 or n % 2):
        return None, None, (f"{len(fields)} values: neither a box (class cx cy w h) nor a polygon (class x1 y1 "
                            "... xn yn, n >= 3)")
    try:
        cls = float(fields[0])
        values = np.array([float(v) for v in fields[1:]], np.float64)
    except ValueError:
        return None, None, "a value is not a number"
    if cls != int(cls) or not 0 <= cls < num_classes:
        return None, None, f"class {fields[0]} is not one of the {num_classes} class indices 0 .. {num_classes - 1}"
    if not np.isfinite(values).all() or values.min() < -COORD_TOLERANCE or values.max() > 1 + COORD_TOLERANCE:
        return None, None, "coordinates outside [0, 1] (YOLO's are normalised by the image size)"
    return int(cls), np.clip(values, 0.0, 1.0), ""


def _find_image(image_dir: Path, stem: str) -> Optional[Path]:
    for ext in IMAGE_EXTENSIONS:
        for suffix in (ext, ext.upper()):
            if (image_dir / f"{stem}{suffix}").is_file():
                return image_dir / f"{stem}{suffix}"
    return None


def convert_yolo(label_dir: str, image_dir: Optional[str] = None,
                 names_file: Optional[str] = None) -> Tuple[dict, ConversionReport]:
    """COCO dict of a folder of YOLO label files (``file_name`` relative to the images folder).

    Args:
        label_dir: folder of ``<stem>.txt`` label files.
        image_dir: folder of the images (default: see the module docstring).
        names_file: ``data.yaml`` or ``classes.txt`` (default: found beside the labels).
    """
    label_dir = Path(label_dir)
    if not label_dir.is_dir():
        raise FileNotFoundError(f"{label_dir}: no such folder")
    if image_dir is None:
        image_dir = default_image_dir(label_dir.resolve())
        if image_dir is None or not image_dir.is_dir():
            raise FileNotFoundError(f"{label_dir}: no images folder beside it (an 'images' folder in place of "
                                    "'labels' in its path); pass --images")
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: no such folder")
    names_path = Path(names_file) if names_file else find_names_file(label_dir)
    if names_path is None:
        raise FileNotFoundError(f"{label_dir}: no class names ({', '.join(NAMES_FILES)}) beside the labels or in "
                                "their parent folders; pass --names data.yaml or classes.txt")
    if not names_path.is_file():
        raise FileNotFoundError(f"{names_path}: no such file")
    names = _names_from_file(names_path)
    report = ConversionReport()
    images, annotations = [], []
    labels = {p.stem: p for p in sorted(label_dir.glob("*.txt")) if p.name != "classes.txt"}
    stems = sorted(set(labels) | {p.stem for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS})
    for stem in stems:
        label_path = labels.get(stem)
        image_path = _find_image(image_dir, stem)
        if image_path is None:
            report.skip(str(label_path), f"no image {stem}.<jpg|png|...> in {image_dir}")
            continue
        size, orientation = image_size(image_path)
        if size is None:
            report.skip(str(image_path), "cannot be read as an image")
            continue
        height, width = size
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": image_path.name, "height": height, "width": width})
        if orientation != 1:
            report.note(str(image_path), f"EXIF orientation {orientation}: the labels are taken as normalised by "
                        "the rotated image's size, as Ultralytics does")
        if label_path is None:
            report.note(str(image_path), "no label file (kept as an image without objects)")
            continue
        lines = label_path.read_text().splitlines()
        if not any(line.strip() for line in lines):
            report.note(str(label_path), "no object (kept as an image without objects)")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{label_path} line {number}"
            cls, values, why = _parse_line(line, len(names))
            if cls is None:
                report.skip(where, why)
                continue
            ann_id = len(annotations) + 1
            if len(values) == 4:
                cx, cy, w, h = values * [width, height, width, height]
                box = (max(cx - w / 2, 0.0), max(cy - h / 2, 0.0), min(cx + w / 2, width), min(cy + h / 2, height))
                if box[2] <= box[0] or box[3] <= box[1]:
                    report.skip(where, "box of zero width or height")
                    continue
                annotations.append(box_annotation(box, ann_id, image_id, cls + 1))
                continue
            polygon = (values.reshape(-1, 2) * [width, height]).ravel().tolist()
            mask = mask_util.decode(mask_util.frPyObjects([polygon], height, width)).any(axis=2)
            if not mask.any():
                report.skip(where, "its polygon covers no pixel")
                continue
            annotations.append(mask_annotation(mask, ann_id, image_id, cls + 1))
    note_mixed_kinds(annotations, report, str(label_dir))
    categories = {name: k + 1 for k, name in enumerate(names)}
    return coco_dict(f"converted from YOLO labels in {label_dir}", images, annotations, categories), report

