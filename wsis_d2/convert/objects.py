"""One image's shapes from an annotation tool (areas, boxes, clicked points) -> COCO objects.

Shared by the labelme and CVAT converters. The rules:

- **Objects.** Shapes with the same label and the same group id (labelme's ``group_id``, CVAT's
  ``group_id``) are one object; a shape without a group id is an object of its own.
- **Areas and boxes.** An object with an area (a polygon) gets a mask: the union of its areas and of
  the rectangles grouped with them (parts of the drawn area, as labelme's own ``labelme2coco`` fills
  them). An object of rectangles only is **box-only**: its ``bbox`` is the rectangles' enclosing box
  (corners as drawn, continuous pixel coordinates, clipped to the image), with no ``segmentation`` key
  and the box's ``area``, the form of :func:`wsis_d2.data.views.box_view`, never a filled box.
- **Clicked points** (PointSup, Cheng et al., "Pointly-Supervised Instance Segmentation", CVPR 2022)
  become the ``point_coords`` ([x, y] as clicked) and ``point_labels`` of the object they belong to.
  Label convention (case ignored): :data:`POSITIVE_LABELS` or the class name of its object -> 1 (on
  the object); :data:`NEGATIVE_LABELS` or a label ending in ``-neg`` / ``_neg`` (``cat-neg``) -> 0
  (background in the object's box); any other label (another class's name) is left out and reported.
  A point with a group id belongs to the object of that group (the link wins over geometry; it must
  still lie in that object's box). Otherwise it belongs to the one box that contains it, among the
  boxes of its class when its label is a class name; a point in no box or in several is left out and
  reported with its file and index.
- When any object of a conversion has points, every object carries ``point_coords`` /
  ``point_labels`` (empty lists where nobody clicked: its points are unknown, none is invented), so
  that every annotation of an image has the same fields for the data loader.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .common import ConversionReport, box_annotation, mask_annotation

POSITIVE_LABELS = ("positive", "pos", "fg", "foreground", "+", "1")
NEGATIVE_LABELS = ("negative", "neg", "bg", "background", "-", "0")
NEGATIVE_SUFFIXES = ("-neg", "_neg")


@dataclass
class Shape:
    """One drawn shape. ``kind``: "area" (``mask``: bool (H, W)), "box" (``box``: x0, y0, x1, y1) or
    "point" (``point``: x, y). ``where`` names it in the report (file, image, shape index)."""
    where: str
    label: str
    group: Optional[object]
    kind: str
    mask: Optional[np.ndarray] = None
    box: Optional[Tuple[float, float, float, float]] = None
    point: Optional[Tuple[float, float]] = None


@dataclass
class _Object:
    label: str
    group: Optional[object]
    where: str
    masks: List[np.ndarray] = field(default_factory=list)
    boxes: List[Tuple[float, float, float, float]] = field(default_factory=list)
    coords: List[List[float]] = field(default_factory=list)
    labels: List[int] = field(default_factory=list)
    annotation: Optional[dict] = None

    def describe(self) -> str:
        return f"{self.label} [{', '.join(f'{v:g}' for v in self.extent())}]"

    def extent(self) -> Tuple[float, float, float, float]:
        x, y, w, h = self.annotation["bbox"]
        return x, y, x + w, y + h


def point_label(label: str, object_label: str) -> Optional[int]:
    """1 (on the object), 0 (background) or None (neither) for a point labelled ``label`` in an object
    of class ``object_label`` (see the module docstring)."""
    name = label.strip().lower()
    if name in POSITIVE_LABELS or name == object_label.strip().lower():
        return 1
    if name in NEGATIVE_LABELS or name.endswith(NEGATIVE_SUFFIXES):
        return 0
    return None


def _clip_box(box, height: int, width: int) -> Tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width),
            min(max(y1, 0.0), height))


def _inside(point, extent) -> bool:
    x, y = point
    x0, y0, x1, y1 = extent
    return x0 <= x <= x1 and y0 <= y <= y1


def _owner(shape: Shape, objects: List[_Object]) -> Tuple[Optional[_Object], str]:
    """(the object a point belongs to, "") or (None, why none)."""
    of_class = [o for o in objects if o.label == shape.label]
    if shape.group is not None:
        linked = [o for o in objects if o.group == shape.group]
        if of_class and any(o in of_class for o in linked):
            linked = [o for o in linked if o in of_class]
        if len(linked) > 1:
            return None, (f"its group_id {shape.group} links {len(linked)} objects "
                          f"({', '.join(o.label for o in linked)}); one point belongs to one object")
        if len(linked) == 1:
            if not _inside(shape.point, linked[0].extent()):
                return None, (f"lies outside the box of the object {linked[0].describe()} its group_id "
                              f"{shape.group} links it to")
            return linked[0], ""
        # a group id no box or area has: geometry decides
    candidates = of_class if of_class else objects
    containing = [o for o in candidates if _inside(shape.point, o.extent())]
    which = f"{shape.label} box" if of_class else "box"
    if not containing:
        return None, f"lies in no {which}"
    if len(containing) > 1:
        return None, (f"lies in {len(containing)} {which}es ({', '.join(o.describe() for o in containing)}); "
                      "link it to one with a group id")
    return containing[0], ""


def shapes_to_annotations(shapes: Sequence[Shape], image_id: int, height: int, width: int,
                          categories: Dict[str, int], first_id: int, report: ConversionReport) -> List[dict]:
    """COCO annotations (ids from ``first_id``) of one image's shapes; ``categories`` (name -> id) grows
    with new class names. Everything left out is reported."""
    objects: Dict[tuple, _Object] = {}
    points = []
    for k, shape in enumerate(shapes):
        if shape.kind == "point":
            points.append(shape)
            continue
        key = (shape.label, shape.group) if shape.group is not None else (shape.label, f"shape{k}")
        obj = objects.setdefault(key, _Object(shape.label, shape.group, shape.where))
        if shape.kind == "area":
            obj.masks.append(shape.mask)
        else:
            obj.boxes.append(shape.box)
    kept: List[_Object] = []
    for obj in objects.values():
        category_id = categories.get(obj.label, len(categories) + 1)
        ann_id = first_id + len(kept)
        if obj.masks:
            mask = np.logical_or.reduce(obj.masks)
            for x0, y0, x1, y1 in obj.boxes:  # rectangles grouped with an area are parts of it
                rows = slice(max(int(round(y0)), 0), max(int(round(y1)) + 1, 0))
                mask[rows, max(int(round(x0)), 0):max(int(round(x1)) + 1, 0)] = True
            if not mask.any():
                report.skip(obj.where, f"its {obj.label} area covers no pixel of the {width}x{height} image")
                continue
            obj.annotation = mask_annotation(mask, ann_id, image_id, category_id)
        else:
            boxes = np.asarray(obj.boxes, np.float64)
            x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
            x1, y1 = boxes[:, 2].max(), boxes[:, 3].max()
            cx0, cy0, cx1, cy1 = _clip_box((x0, y0, x1, y1), height, width)
            if cx1 <= cx0 or cy1 <= cy0:
                report.skip(obj.where, f"its {obj.label} box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] has no area inside "
                            f"the {width}x{height} image")
                continue
            if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
                report.note(obj.where, f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] clipped to the {width}x{height} image")
            obj.annotation = box_annotation((cx0, cy0, cx1, cy1), ann_id, image_id, category_id)
        categories.setdefault(obj.label, category_id)
        kept.append(obj)
    for shape in points:
        owner, why = _owner(shape, kept)
        if owner is None:
            report.skip(shape.where, f"point [{shape.point[0]:g}, {shape.point[1]:g}] ({shape.label}) {why}")
            continue
        label = point_label(shape.label, owner.label)
        if label is None:
            report.skip(shape.where, f"point label {shape.label!r} is neither positive (positive, pos, fg or the "
                        f"class {owner.label!r}) nor negative (negative, neg, bg, *-neg) for its {owner.label} object")
            continue
        owner.coords.append([float(shape.point[0]), float(shape.point[1])])
        owner.labels.append(label)
    annotations = []
    for obj in kept:
        if obj.coords:
            obj.annotation.update(point_coords=obj.coords, point_labels=obj.labels)
        annotations.append(obj.annotation)
    return annotations


def complete_point_lists(annotations: List[dict], report: ConversionReport) -> None:
    """When some annotation has points, give the others empty ``point_coords`` / ``point_labels`` (in
    place) and note how many objects have no clicked point."""
    if not any("point_coords" in a for a in annotations):
        return
    without = [a for a in annotations if "point_coords" not in a]
    for a in without:
        a.update(point_coords=[], point_labels=[])
    if without:
        report.note("points", f"{len(without)} of {len(annotations)} objects have no clicked point (empty "
                    "point_coords: a point loss learns nothing about their masks)")
