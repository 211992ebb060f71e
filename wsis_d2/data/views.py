"""Supervision views of a COCO instance dataset.

A view is a copy of the COCO dict that keeps only the labels a method is
entitled to, written to its own JSON file:

- ``full``: boxes + masks;
- ``box``: boxes only (``area`` becomes the box area, so no mask statistic leaks);
- ``point``: boxes + PointSup points (``point_coords``/``point_labels``), no masks;
- ``semi_<p>``: p % of the images (seeded choice) keep boxes + masks; every other
  image keeps boxes + one positive point per object (the mask pixel nearest to
  the mask's centre of mass, as PointWSSIS' centre points) and no mask.
"""
import copy
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .pixels import pixel_span
from .rle import decode

MASK_KEYS = ("segmentation",)
POINT_KEYS = ("point_coords", "point_labels")


def _strip(ann: dict, keys) -> dict:
    return {k: v for k, v in ann.items() if k not in keys}


def _box_area(ann: dict) -> float:
    return float(ann["bbox"][2] * ann["bbox"][3])


def _with_info(coco: dict, annotations, view: str) -> dict:
    out = {k: copy.deepcopy(v) for k, v in coco.items() if k != "annotations"}
    out["info"] = dict(out.get("info", {}), supervision=view)
    out["annotations"] = annotations
    return out


def full_view(coco: dict) -> dict:
    return _with_info(coco, [_strip(a, POINT_KEYS) for a in coco["annotations"]], "full")


def box_view(coco: dict) -> dict:
    anns = [dict(_strip(a, MASK_KEYS + POINT_KEYS), area=_box_area(a)) for a in coco["annotations"]]
    return _with_info(coco, anns, "box")


def _axis_samples(start: float, length: float, size: int, num: int, rng: np.random.Generator):
    """(pixel indices, coordinates) of ``num`` draws along one axis among the pixels of
    :func:`pixel_span`; a box too thin to hold a pixel centre gives its own centre line."""
    first, end, thin = pixel_span(start, start + length, size)
    if thin:
        return np.full(num, first), np.full(num, start + length / 2.0)
    index = rng.integers(first, end, size=num)
    return index, index + 0.5


def sample_box_points(mask: np.ndarray, bbox, num_points: int, rng: np.random.Generator):
    """PointSup-style points: ``num_points`` pixels drawn uniformly in the box, labelled from the mask.

    Args:
        mask: (H, W) the object's mask.
        bbox: COCO [x, y, w, h] (floats allowed); the pixels drawn from are those
            whose centres lie in the box.

    Returns:
        (coords [[x, y], ...] at pixel centres, labels [0/1, ...]).
    """
    img_h, img_w = mask.shape
    x, y, w, h = bbox
    ix, xs = _axis_samples(x, w, img_w, num_points, rng)
    iy, ys = _axis_samples(y, h, img_h, num_points, rng)
    coords = [[float(px), float(py)] for px, py in zip(xs, ys)]
    labels = [int(mask[py, px]) for px, py in zip(ix, iy)]
    return coords, labels


def add_points(coco: dict, num_points: int = 10, seed: int = 0) -> dict:
    """A copy of ``coco`` whose annotations carry ``num_points`` PointSup points drawn from their masks.

    Seeded per annotation id, so an annotation gets the same points whatever else
    the file holds. Existing points are replaced.
    """
    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    sizes = {img["id"]: (img["height"], img["width"]) for img in coco["images"]}
    anns = []
    for a in coco["annotations"]:
        segm = a.get("segmentation")
        if not segm:
            raise ValueError(f"annotation id {a.get('id')} has no 'segmentation' to label points from")
        mask = decode(segm, *sizes[a["image_id"]])
        rng = np.random.default_rng([seed, int(a["id"])])
        coords, labels = sample_box_points(mask, a["bbox"], num_points, rng)
        anns.append(dict(a, point_coords=coords, point_labels=labels))
    return _with_info(coco, anns, coco.get("info", {}).get("supervision", "full"))


def point_view(coco: dict) -> dict:
    for a in coco["annotations"]:
        if "point_coords" not in a or "point_labels" not in a:
            raise ValueError(f"annotation id {a.get('id')} has no point_coords/point_labels: "
                             "sample points first (they are drawn from the masks)")
    anns = [dict(_strip(a, MASK_KEYS), area=_box_area(a)) for a in coco["annotations"]]
    return _with_info(coco, anns, "point")


def center_point(segmentation, height: int, width: int) -> list:
    """The mask pixel nearest to the mask's centre of mass, as [x, y] at the pixel centre.

    The centre of mass itself can fall outside a non-convex mask (a ring's hole),
    hence the nearest mask pixel. ``segmentation``: any COCO form; ValueError if empty.
    """
    mask = decode(segmentation, height, width)
    ys, xs = np.nonzero(mask)
    if not len(ys):
        raise ValueError("the mask is empty")
    cy, cx = ys.mean(), xs.mean()
    k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    return [float(xs[k]) + 0.5, float(ys[k]) + 0.5]


def semi_view(coco: dict, percent: float, seed: int = 0) -> dict:
    """``percent`` % of the images fully labelled; the rest boxes + one centre point per object."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    image_ids = sorted(img["id"] for img in coco["images"])
    num_full = max(1, int(round(len(image_ids) * percent / 100.0)))
    rng = np.random.default_rng([seed, 7, int(round(percent * 1000))])
    full_ids = set(rng.choice(image_ids, size=num_full, replace=False).tolist())
    sizes = {img["id"]: (img["height"], img["width"]) for img in coco["images"]}
    anns = []
    for a in coco["annotations"]:
        if a["image_id"] in full_ids:
            anns.append(_strip(a, POINT_KEYS))
        else:
            if not a.get("segmentation"):
                raise ValueError(f"annotation id {a.get('id')} has no segmentation to take a centre point from")
            try:
                point = center_point(a["segmentation"], *sizes[a["image_id"]])
            except ValueError as e:
                raise ValueError(f"annotation id {a.get('id')}: no centre point ({e})") from None
            anns.append(dict(_strip(a, MASK_KEYS + POINT_KEYS), area=_box_area(a),
                             point_coords=[point], point_labels=[1]))
    out = _with_info(coco, anns, f"semi_{percent:g}")
    out["info"]["fully_labelled_image_ids"] = sorted(full_ids)
    return out


def parse_view(name: str):
    """'box' | 'point' | 'full' | 'semi_<p>' -> (kind, percent or None); ValueError otherwise."""
    if name in ("full", "box", "point"):
        return name, None
    if name.startswith("semi_"):
        try:
            return "semi", float(name[len("semi_"):])
        except ValueError:
            pass
    raise ValueError(f"unknown view {name!r}: use full, box, point or semi_<percent> (e.g. semi_10)")


def make_view(coco: dict, name: str, num_points: int = 10, seed: int = 0) -> dict:
    """The view ``name`` of a fully-labelled COCO dict (points are drawn from its masks)."""
    kind, percent = parse_view(name)
    if kind == "full":
        return full_view(coco)
    if kind == "box":
        return box_view(coco)
    if kind == "point":
        return point_view(add_points(coco, num_points, seed))
    return semi_view(coco, percent, seed)


def write_views(coco: dict, out_dir, semi_percents: Sequence[float] = (5, 10, 20, 50), seed: int = 0) -> None:
    """Write ``train_{full,box,point,semi_<p>}.json`` of ``coco`` into ``out_dir``."""
    out_dir = Path(out_dir)
    views = {"full": full_view(coco), "box": box_view(coco), "point": point_view(coco)}
    views.update({f"semi_{p:g}": semi_view(coco, p, seed) for p in semi_percents})
    for name, data in views.items():
        (out_dir / f"train_{name}.json").write_text(json.dumps(data))
