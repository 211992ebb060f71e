"""The embedded "shapes" dataset: a seeded generator of COCO instance data.

No data can be downloaded, so wsis-d2 draws its own. To keep weak/full
comparisons meaningful the data is not trivial:

- six classes, three of them non-convex (crescent, star, cross with thin arms)
  and one with a hole (ring);
- objects and backgrounds carry textures (stripes, checkers, low-frequency
  noise, dots), not flat colours;
- a fifth of the objects are "camouflaged": their mean colour is close to the
  background around them (only their texture differs), so colour-affinity
  priors cannot solve them alone;
- objects occlude each other (an object is only placed where every earlier one
  keeps at least half of its then-visible area),
  edges are anti-aliased and the whole image carries sensor noise.

Every annotation holds ``bbox`` (tight box of the visible mask), ``segmentation``
(compressed RLE), ``area``, ``iscrowd`` and PointSup-style points:
``point_coords`` (N pixel centres drawn uniformly inside the box, in continuous
image coordinates: pixel (row i, col j) covers [j, j+1) x [i, i+1)) and
``point_labels`` (1 inside the mask, 0 outside).

The images are written once; :mod:`wsis_d2.data.views` then writes one JSON
per supervision view so a method can only read the labels it is entitled to.
"""
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_util
from tqdm import tqdm

from .rle import encode_mask
from .views import sample_box_points, write_views

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2

CATEGORIES = [
    {"id": 1, "name": "disc", "supercategory": "shape"},
    {"id": 2, "name": "ring", "supercategory": "shape"},
    {"id": 3, "name": "crescent", "supercategory": "shape"},
    {"id": 4, "name": "star", "supercategory": "shape"},
    {"id": 5, "name": "cross", "supercategory": "shape"},
    {"id": 6, "name": "triangle", "supercategory": "shape"},
]

# A share of objects whose mean colour is close to the local background.
CAMOUFLAGE_PROB = 0.2
# An object is only placed if every earlier object keeps this share of its visible area.
MIN_VISIBLE_FRACTION = 0.5
MIN_OBJECT_PIXELS = 40


def _rotated_polygon(center, radii, angles, rotation) -> np.ndarray:
    angles = np.asarray(angles) + rotation
    xs = center[0] + np.asarray(radii) * np.cos(angles)
    ys = center[1] + np.asarray(radii) * np.sin(angles)
    return np.round(np.stack([xs, ys], axis=1) * 16).astype(np.int32)  # 4 fractional bits


def _fill_polygon(shape_hw, polygon) -> np.ndarray:
    canvas = np.zeros(shape_hw, np.uint8)
    cv2.fillPoly(canvas, [polygon], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def _ellipse(shape_hw, center, axes, rotation_deg) -> np.ndarray:
    canvas = np.zeros(shape_hw, np.uint8)
    c = (int(round(center[0] * 16)), int(round(center[1] * 16)))
    a = (max(1, int(round(axes[0] * 16))), max(1, int(round(axes[1] * 16))))
    cv2.ellipse(canvas, c, a, rotation_deg, 0, 360, 1, thickness=-1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def draw_shape(name: str, shape_hw, center, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Binary mask (H, W) of one object of class ``name`` centred at ``center``."""
    rotation = rng.uniform(0, 2 * np.pi)
    if name == "disc":
        aspect = rng.uniform(0.7, 1.0)
        return _ellipse(shape_hw, center, (radius, radius * aspect), np.degrees(rotation))
    if name == "ring":
        aspect = rng.uniform(0.8, 1.0)
        outer = _ellipse(shape_hw, center, (radius, radius * aspect), np.degrees(rotation))
        hole = rng.uniform(0.45, 0.65)
        inner = _ellipse(shape_hw, center, (radius * hole, radius * aspect * hole), np.degrees(rotation))
        return outer & ~inner
    if name == "crescent":
        body = _ellipse(shape_hw, center, (radius, radius), 0)
        shift = radius * rng.uniform(0.35, 0.6)
        bite_center = (center[0] + shift * np.cos(rotation), center[1] + shift * np.sin(rotation))
        bite_r = radius * rng.uniform(0.8, 0.95)
        return body & ~_ellipse(shape_hw, bite_center, (bite_r, bite_r), 0)
    if name == "star":
        n = int(rng.integers(5, 7))
        inner = rng.uniform(0.35, 0.5)
        angles = np.arange(2 * n) * np.pi / n
        radii = np.where(np.arange(2 * n) % 2 == 0, radius, radius * inner)
        return _fill_polygon(shape_hw, _rotated_polygon(center, radii, angles, rotation))
    if name == "cross":
        half_w = radius * rng.uniform(0.18, 0.3)  # thin arms
        arm = radius
        pts = np.array(
            [(-half_w, -arm), (half_w, -arm), (half_w, -half_w), (arm, -half_w), (arm, half_w),
             (half_w, half_w), (half_w, arm), (-half_w, arm), (-half_w, half_w), (-arm, half_w),
             (-arm, -half_w), (-half_w, -half_w)]
        )
        rot = np.array([[np.cos(rotation), -np.sin(rotation)], [np.sin(rotation), np.cos(rotation)]])
        pts = pts @ rot.T + np.asarray(center)
        return _fill_polygon(shape_hw, np.round(pts * 16).astype(np.int32))
    if name == "triangle":
        angles = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, size=3)
        radii = radius * rng.uniform(0.85, 1.0, size=3)
        return _fill_polygon(shape_hw, _rotated_polygon(center, radii, angles, rotation))
    raise KeyError(f"unknown shape class {name!r}")


def _texture(shape_hw, base_color, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float32 texture around ``base_color`` (BGR, 0-255)."""
    h, w = shape_hw
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.choice(["stripes", "checker", "noise", "dots"])
    if kind == "stripes":
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(4, 14)
        pattern = np.sin(2 * np.pi * (xs * np.cos(theta) + ys * np.sin(theta)) / period)
    elif kind == "checker":
        cell = int(rng.integers(3, 9))
        pattern = (((xs // cell) + (ys // cell)) % 2) * 2 - 1
    elif kind == "noise":
        cell = int(rng.integers(4, 12))
        grid = rng.uniform(-1, 1, size=(h // cell + 2, w // cell + 2)).astype(np.float32)
        pattern = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        period = rng.uniform(5, 10)
        pattern = np.sin(2 * np.pi * xs / period) * np.sin(2 * np.pi * ys / period)
    amplitude = rng.uniform(12, 40)
    direction = rng.uniform(-1, 1, size=3)
    direction /= np.linalg.norm(direction) + 1e-6
    tex = np.asarray(base_color, np.float32)[None, None, :] + amplitude * pattern[..., None] * direction
    return tex.astype(np.float32)


def _background(shape_hw, rng: np.random.Generator) -> np.ndarray:
    h, w = shape_hw
    base = rng.uniform(40, 215, size=3)
    tex = _texture(shape_hw, base, rng)
    # a soft illumination gradient
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (xs * np.cos(theta) + ys * np.sin(theta)) / max(h, w)
    return tex + rng.uniform(-30, 30) * ramp[..., None]


def _object_color(background_mean: np.ndarray, camouflage: bool, rng: np.random.Generator) -> np.ndarray:
    if camouflage:
        return np.clip(background_mean + rng.normal(0, 20, size=3), 10, 245)
    for _ in range(20):
        color = rng.uniform(20, 235, size=3)
        if np.linalg.norm(color - background_mean) > 70:
            return color
    return 255 - background_mean


def render_image(rng: np.random.Generator, height: int, width: int, max_objects: int = 6):
    """Draw one image. Returns (BGR uint8 image, list of (category_id, visible bool mask))."""
    shape_hw = (height, width)
    canvas = _background(shape_hw, rng)
    masks: List[np.ndarray] = []
    categories: List[int] = []
    num_objects = int(rng.integers(2, max_objects + 1))
    for _ in range(num_objects):
        cat = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        radius = rng.uniform(13, 0.24 * min(height, width))
        for _attempt in range(15):
            center = (rng.uniform(radius * 0.6, width - radius * 0.6), rng.uniform(radius * 0.6, height - radius * 0.6))
            mask = draw_shape(cat["name"], shape_hw, center, radius, rng)
            if mask.sum() < MIN_OBJECT_PIXELS:
                continue
            # Every earlier object must keep enough of itself visible.
            if all((m & ~mask).sum() >= max(MIN_VISIBLE_FRACTION * m.sum(), MIN_OBJECT_PIXELS) for m in masks):
                break
        else:
            continue
        masks = [m & ~mask for m in masks]
        masks.append(mask)
        categories.append(cat["id"])

        camouflage = rng.random() < CAMOUFLAGE_PROB
        local_mean = canvas[mask].mean(axis=0)
        texture = _texture(shape_hw, _object_color(local_mean, camouflage, rng), rng)
        alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0.6)[..., None]
        canvas = canvas * (1 - alpha) + texture * alpha

    canvas += rng.normal(0, 5, size=canvas.shape)
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    return image, list(zip(categories, masks))


def _generate_split(root: Path, split: str, num_images: int, seed: int, num_points: int,
                    size_range: Tuple[int, int], first_ann_id: int) -> dict:
    split_id = {"train": 0, "val": 1}[split]
    (root / split).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    ann_id = first_ann_id
    for index in tqdm(range(num_images), desc=f"shapes {split}", leave=False, disable=num_images < 50):
        rng = np.random.default_rng([seed, split_id, index])
        height = int(rng.integers(size_range[0], size_range[1] + 1))
        width = int(rng.integers(size_range[0], size_range[1] + 1))
        image, objects = render_image(rng, height, width)
        file_name = f"{split}/{index:06d}.png"
        cv2.imwrite(str(root / file_name), image)
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for category_id, mask in objects:
            rle = encode_mask(mask)
            bbox = [float(v) for v in mask_util.toBbox(rle)]
            coords, labels = sample_box_points(mask, bbox, num_points, rng)
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": category_id,
                "bbox": bbox, "area": float(mask_util.area(rle)), "iscrowd": 0,
                "segmentation": rle, "point_coords": coords, "point_labels": labels,
            })
            ann_id += 1
    return {
        "info": {"description": f"wsis-d2 shapes ({split})", "version": GENERATOR_VERSION, "seed": seed},
        "images": images, "annotations": annotations, "categories": CATEGORIES,
    }


def generate_shapes(root, num_train: int = 400, num_val: int = 100, seed: int = 0, num_points: int = 10,
                    size_range: Tuple[int, int] = (128, 192), semi_percents: Sequence[int] = (5, 10, 20, 50)) -> Dict[str, str]:
    """Write the shapes dataset and its supervision views into ``root``.

    Files are first written to a temporary folder beside ``root`` and moved in
    place at the end, so concurrent processes and interrupted runs never leave a
    half-written dataset. Returns ``{view name: json path}``.
    """
    root = Path(root)
    params = dict(num_train=num_train, num_val=num_val, seed=seed, num_points=num_points,
                  size_range=list(size_range), semi_percents=list(semi_percents), version=GENERATOR_VERSION)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-tmp-", dir=root.parent))
    try:
        logger.info(f"Generating the shapes dataset ({num_train} train / {num_val} val images) in {root} ...")
        train = _generate_split(tmp, "train", num_train, seed, num_points, size_range, first_ann_id=1)
        val = _generate_split(tmp, "val", num_val, seed, num_points, size_range,
                              first_ann_id=len(train["annotations"]) + 1)
        annotations_dir = tmp / "annotations"
        annotations_dir.mkdir()
        for name, data in (("train_all", train), ("val", val)):
            (annotations_dir / f"{name}.json").write_text(json.dumps(data))
        write_views(train, annotations_dir, semi_percents=semi_percents, seed=seed)
        (tmp / "params.json").write_text(json.dumps(params, indent=1))
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / "params.json").exists():
                raise
            # another process finished first: keep its (identical) copy
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return shapes_json_files(root, semi_percents)


def shapes_json_files(root, semi_percents: Sequence[int] = (5, 10, 20, 50)) -> Dict[str, str]:
    """``{view name: json path}`` of a shapes dataset in ``root``."""
    ann = Path(root) / "annotations"
    files = {"full": "train_full.json", "box": "train_box.json", "point": "train_point.json", "val": "val.json"}
    files.update({f"semi_{p}": f"train_semi_{p}.json" for p in semi_percents})
    return {view: str(ann / name) for view, name in files.items()}


def ensure_shapes(root, **generator_kwargs) -> Dict[str, str]:
    """Generate the shapes dataset in ``root`` unless it is already there.

    Raises:
        FileExistsError: ``root`` holds data of another generator version, or made with other
            ``generator_kwargs`` than those passed (only the keys passed are compared), or
            something that is not a shapes dataset. Nothing there is overwritten.
    """
    root = Path(root)
    if (root / "params.json").exists():
        params = json.loads((root / "params.json").read_text())
        version = params.get("version")
        if version != GENERATOR_VERSION:
            raise FileExistsError(
                f"{root} holds shapes data of generator version {version}, this wsis-d2 writes version "
                f"{GENERATOR_VERSION}; delete {root} to regenerate it (it is not overwritten automatically)."
            )
        # json round trip: tuples asked for compare equal to the lists stored
        asked = json.loads(json.dumps(generator_kwargs))
        differ = {k: v for k, v in asked.items() if params.get(k) != v}
        if differ:
            held = ", ".join(f"{k}={params.get(k)}" for k in differ)
            wanted = ", ".join(f"{k}={v}" for k, v in differ.items())
            raise FileExistsError(
                f"{root} holds shapes data made with {held}, not the {wanted} asked for; it is not "
                f"regenerated over existing data: delete {root} or choose another folder."
            )
        return shapes_json_files(root, generator_kwargs.get("semi_percents", (5, 10, 20, 50)))
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(
            f"{root} exists but holds no complete shapes dataset (no params.json). "
            "It is not overwritten: delete it or set WSIS.SHAPES_ROOT to another folder."
        )
    if root.exists():
        try:
            root.rmdir()
        except FileNotFoundError:
            pass
    return generate_shapes(root, **generator_kwargs)
