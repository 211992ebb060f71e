"""Supervision views of a COCO instance dataset.

A view is a copy of the COCO dict that keeps only the labels a method is
entitled to, written to its own JSON file:

- ``full``: boxes + masks;
- ``box``: boxes only (``area`` becomes the box area, so no mask statistic leaks);
- ``point``: boxes + PointSup points (``point_coords``/``point_labels``), no masks;
- ``semi_<p>``: p % of the images (seeded choice) keep boxes + masks; every other
  image keeps boxes + one positive point per object (the mask pixel nearest to
  the mask's centre of mass, as PointWSSIS' centre points) and no mask;
- ``mixed_<m>_<p>``: per object (not per image), m % of the objects keep their
  masks, p % get a box + PointSup points (drawn from the mask, as the ``point``
  view's) and no mask, the rest a box alone. Seeded: one permutation of the
  annotation ids, so the objects with masks at 5 % are among those at 10 %.
  For ``MODEL.MIXED_SUPERVISION`` (configs/Mixed).
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


def mixed_view(coco: dict, mask_percent: float, point_percent: float, num_points: int = 10, seed: int = 0) -> dict:
    """Per-object mixed supervision: ``mask_percent`` % of the objects keep boxes + masks,
    ``point_percent`` % get boxes + ``num_points`` PointSup points labelled from their (then hidden)
    masks, the rest boxes alone (``area`` the box's where the mask is hidden).

    The objects are chosen by one seeded permutation of the sorted annotation ids (the first m %
    keep masks, the next p % get points), so a larger share of masks keeps the smaller share's. A
    point object's points are those :func:`add_points` draws for it (same seed).
    """
    if not (0 <= mask_percent <= 100 and 0 <= point_percent <= 100 and mask_percent + point_percent <= 100):
        raise ValueError(f"mixed view: mask and point percents must be in [0, 100] and sum to at most 100, "
                         f"got {mask_percent:g} and {point_percent:g}")
    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    ids = sorted(a["id"] for a in coco["annotations"])
    order = np.random.default_rng([seed, 11]).permutation(len(ids))
    num_masks = int(round(len(ids) * mask_percent / 100.0))
    num_points_objects = min(int(round(len(ids) * point_percent / 100.0)), len(ids) - num_masks)
    with_mask = {ids[k] for k in order[:num_masks]}
    with_points = {ids[k] for k in order[num_masks: num_masks + num_points_objects]}
    sizes = {img["id"]: (img["height"], img["width"]) for img in coco["images"]}
    anns = []
    for a in coco["annotations"]:
        if a["id"] in with_mask:
            anns.append(_strip(a, POINT_KEYS))
            continue
        ann = dict(_strip(a, MASK_KEYS + POINT_KEYS), area=_box_area(a))
        if a["id"] in with_points:
            if not a.get("segmentation"):
                raise ValueError(f"annotation id {a.get('id')} has no 'segmentation' to label points from")
            mask = decode(a["segmentation"], *sizes[a["image_id"]])
            coords, labels = sample_box_points(mask, a["bbox"], num_points, np.random.default_rng([seed, int(a["id"])]))
            ann.update(point_coords=coords, point_labels=labels)
        anns.append(ann)
    out = _with_info(coco, anns, f"mixed_{mask_percent:g}_{point_percent:g}")
    out["info"]["objects"] = {"mask": len(with_mask), "points": len(with_points),
                              "box": len(ids) - len(with_mask) - len(with_points)}
    return out


def parse_view(name: str):
    """'box' | 'point' | 'full' | 'semi_<p>' | 'mixed_<m>_<p>' -> (kind, percent or (m, p) or None);
    ValueError otherwise."""
    if name in ("full", "box", "point"):
        return name, None
    if name.startswith("semi_"):
        try:
            return "semi", float(name[len("semi_"):])
        except ValueError:
            pass
    if name.startswith("mixed_"):
        parts = name[len("mixed_"):].split("_")
        try:
            if len(parts) == 2:
                m, p = float(parts[0]), float(parts[1])
                if 0 <= m and 0 <= p and m + p <= 100:
                    return "mixed", (m, p)
        except ValueError:
            pass
    raise ValueError(f"unknown view {name!r}: use full, box, point, semi_<percent> (e.g. semi_10) or "
                     "mixed_<mask percent>_<point percent> (e.g. mixed_10_0; the two sum to at most 100)")


def make_view(coco: dict, name: str, num_points: int = 10, seed: int = 0) -> dict:
    """The view ``name`` of a fully-labelled COCO dict (points are drawn from its masks)."""
    kind, percent = parse_view(name)
    if kind == "full":
        return full_view(coco)
    if kind == "box":
        return box_view(coco)
    if kind == "point":
        return point_view(add_points(coco, num_points, seed))
    if kind == "mixed":
        return mixed_view(coco, *percent, num_points=num_points, seed=seed)
    return semi_view(coco, percent, seed)


def write_views(coco: dict, out_dir, semi_percents: Sequence[float] = (5, 10, 20, 50), seed: int = 0) -> None:
    """Write ``train_{full,box,point,semi_<p>}.json`` of ``coco`` into ``out_dir``."""
    out_dir = Path(out_dir)
    views = {"full": full_view(coco), "box": box_view(coco), "point": point_view(coco)}
    views.update({f"semi_{p:g}": semi_view(coco, p, seed) for p in semi_percents})
    for name, data in views.items():
        (out_dir / f"train_{name}.json").write_text(json.dumps(data))
