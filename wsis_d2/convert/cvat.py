"""CVAT exports -> COCO: "CVAT for images 1.1" XML, and the fixes CVAT's "COCO 1.0" export needs.

**CVAT for images 1.1** (``annotations.xml``): one ``<image name width height>`` per image holding
``<polygon label points="x,y;x,y;...">``, ``<box label xtl ytl xbr ybr>`` and
``<points label points="x,y;...">`` shapes, each with an optional ``group_id``. They become objects,
box-only objects and PointSup points by the rules of :mod:`wsis_d2.convert.objects` (polygons are
rasterised as COCO polygons with pycocotools, as CVAT's own COCO export writes them). Other shapes
(``polyline``, ``ellipse``, ``mask``, ``cuboid``, ``skeleton``, ``tag``) and video ``track`` elements are
left out and reported; an image missing from the images folder is left out and reported.

**COCO 1.0** (CVAT's COCO export, written by Datumaro) loads as COCO but does not train as exported:
a rectangle is an annotation with ``"segmentation": []`` (an empty polygon list, refused by the
checks, instead of no mask); a mask drawn with the brush is an uncompressed RLE with ``"iscrowd": 1``,
which detectron2's training loader drops as a crowd region; clicked points are not in it at all.
:func:`fix_cvat_coco` removes the empty segmentations (box-only objects), makes brush masks ordinary
objects (``keep_crowd`` keeps them crowd regions) with compressed RLE, and checks the result.
"""
import copy
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util

from ..data.checks import check_coco_instances
from ..data.rle import to_rle
from .common import ConversionReport, coco_dict, image_size, note_mixed_kinds
from .objects import Shape, complete_point_lists, shapes_to_annotations

CONVERTED = ("polygon", "box", "points")


def _xy_pairs(text: str) -> np.ndarray:
    """(n, 2) points of CVAT's ``"x1,y1;x2,y2;..."``; ValueError if malformed."""
    pairs = [p.split(",") for p in text.strip().split(";") if p.strip()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ValueError(f"points {text[:40]!r} are not 'x,y;x,y;...'")
    return np.asarray([[float(x), float(y)] for x, y in pairs], np.float64)


def _shapes(element: ET.Element, where: str, height: int, width: int, report: ConversionReport):
    """The :class:`Shape` list of one ``<image>`` element; what cannot be converted is reported."""
    shapes = []
    for k, child in enumerate(element):
        label = child.get("label", "")
        shape_where = f"{where} {child.tag} {k}" + (f" ({label})" if label else "")
        if child.tag not in CONVERTED:
            why = ("a brush mask: export the task as 'COCO 1.0' and convert it with --format coco-cvat"
                   if child.tag == "mask" else f"<{child.tag}> is not a polygon, a box or points")
            report.skip(shape_where, why)
            continue
        if not label:
            report.skip(shape_where, "no label")
            continue
        group = child.get("group_id")
        try:
            if child.tag == "box":
                x0, y0, x1, y1 = (float(child.get(a)) for a in ("xtl", "ytl", "xbr", "ybr"))
                angle = math.radians(float(child.get("rotation") or 0.0))
                if angle:  # the axis-aligned box enclosing the rotated one
                    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
                    ex = abs(hw * math.cos(angle)) + abs(hh * math.sin(angle))
                    ey = abs(hw * math.sin(angle)) + abs(hh * math.cos(angle))
                    x0, y0, x1, y1 = cx - ex, cy - ey, cx + ex, cy + ey
                    report.note(shape_where, f"box rotated by {child.get('rotation')} degrees: its axis-aligned "
                                "enclosing box is used")
                shapes.append(Shape(shape_where, label, group, "box", box=(x0, y0, x1, y1)))
                continue
            points = _xy_pairs(child.get("points", ""))
        except (TypeError, ValueError) as e:
            report.skip(shape_where, f"unusable coordinates ({e})")
            continue
        if child.tag == "points":
            for j, point in enumerate(points):
                where_j = shape_where if len(points) == 1 else f"{shape_where} point {j}"
                shapes.append(Shape(where_j, label, group, "point", point=tuple(point)))
            continue
        if len(points) < 3:
            report.skip(shape_where, f"polygon with {len(points)} point(s) is not an area (needs at least 3)")
            continue
        rle = mask_util.frPyObjects([points.ravel().tolist()], height, width)
        shapes.append(Shape(shape_where, label, group, "area", mask=mask_util.decode(rle).any(axis=2)))
    return shapes


def convert_cvat_xml(xml_file: str, image_dir: Optional[str] = None) -> Tuple[dict, ConversionReport]:
    """COCO dict of a "CVAT for images 1.1" XML file (``file_name`` relative to ``image_dir``).

    Args:
        xml_file: the exported ``annotations.xml``.
        image_dir: folder of the images (default: ``images/`` beside the XML when there is one, as CVAT's
            export with images has it, else the XML's folder).
    """
    xml_file = Path(xml_file)
    if not xml_file.is_file():
        raise FileNotFoundError(f"{xml_file}: no such file")
    if image_dir is None:
        image_dir = xml_file.parent / "images" if (xml_file.parent / "images").is_dir() else xml_file.parent
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: no such folder")
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{xml_file}: not an XML file ({e})") from None
    if root.tag != "annotations":
        raise ValueError(f"{xml_file}: not a 'CVAT for images' file (its root element is <{root.tag}>, not "
                         "<annotations>)")
    report = ConversionReport()
    for track in root.iter("track"):
        report.skip(f"{xml_file} track {track.get('id')}", "video tracks are not converted (export 'CVAT for images')")
    images, annotations, categories = [], [], {}
    for element in root.iter("image"):
        name = element.get("name", "")
        where = f"{xml_file} image {name}"
        size, orientation = image_size(image_dir / name) if name else (None, 0)
        if size is None:
            report.skip(where, f"{image_dir / name} is missing or not an image")
            continue
        height, width = size
        try:
            stated = (int(element.get("height")), int(element.get("width")))
        except (TypeError, ValueError):
            stated = None
        if stated != (height, width):
            said = f"say {stated[1]}x{stated[0]}" if stated else "are missing"
            report.note(where, f"its width/height {said}, but the image is {width}x{height} as detectron2 "
                        "reads it: the image's size is used")
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        shapes = _shapes(element, where, height, width, report)
        if not len(element):
            report.note(where, "no shape (kept as an image without objects)")
        annotations += shapes_to_annotations(shapes, image_id, height, width, categories, len(annotations) + 1,
                                             report)
    complete_point_lists(annotations, report)
    note_mixed_kinds(annotations, report, str(xml_file))
    return coco_dict(f"converted from CVAT for images 1.1 file {xml_file}", images, annotations, categories), report


def fix_cvat_coco(json_file: str, image_dir: Optional[str] = None,
                  keep_crowd: bool = False) -> Tuple[dict, ConversionReport]:
    """CVAT's "COCO 1.0" ``instances_*.json`` made trainable (see the module docstring), then checked.

    Args:
        json_file: the exported COCO JSON.
        image_dir: folder the images' ``file_name`` are relative to (default: ``../images`` of an
            ``annotations/`` folder, as CVAT's export with images has it, else the JSON's folder).
        keep_crowd: keep ``iscrowd: 1`` masks as crowd regions (default: objects, as CVAT marks every
            brush mask so).
    """
    json_file = Path(json_file)
    if not json_file.is_file():
        raise FileNotFoundError(f"{json_file}: no such file")
    if image_dir is None:
        beside = json_file.parent.parent / "images"
        image_dir = beside if json_file.parent.name == "annotations" and beside.is_dir() else json_file.parent
    try:
        coco = json.loads(json_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{json_file}: not a JSON file ({e})") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations")):
        raise ValueError(f"{json_file}: not a COCO file (no 'images' and 'annotations' lists)")
    coco = copy.deepcopy(coco)
    report = ConversionReport()
    sizes = {im.get("id"): (im.get("height"), im.get("width")) for im in coco["images"] if isinstance(im, dict)}
    boxes = crowd = 0
    for ann in coco["annotations"]:
        if not isinstance(ann, dict):
            continue
        segm = ann.get("segmentation")
        if segm in ([], None, {}):
            ann.pop("segmentation", None)
            if isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4:
                ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
            boxes += 1
        elif isinstance(segm, dict) and isinstance(segm.get("counts"), list) and ann.get("image_id") in sizes:
            rle = to_rle(segm, *segm.get("size", sizes[ann["image_id"]]))
            ann["segmentation"] = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
        if ann.get("iscrowd") == 1 and "segmentation" in ann and not keep_crowd:
            ann["iscrowd"] = 0
            crowd += 1
    if boxes:
        report.note(str(json_file), f"{boxes} annotations with an empty segmentation (CVAT rectangles) made "
                    "box-only (no segmentation key, area = box area)")
    if crowd:
        report.note(str(json_file), f"{crowd} iscrowd masks (CVAT brush masks) made objects (iscrowd 0); "
                    "--keep-crowd keeps them crowd regions, which training ignores")
    info = coco.get("info") if isinstance(coco.get("info"), dict) else {}
    coco["info"] = dict(info, description=f"fixed from CVAT COCO 1.0 file {json_file}")
    check_coco_instances(coco, str(json_file), str(image_dir))
    return coco, report
