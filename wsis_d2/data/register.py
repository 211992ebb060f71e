"""Register COCO instance datasets (yours or the shapes views) with annotation checks.

Loading reuses detectron2's ``load_coco_json``; on top of it, the JSON is
checked once (:func:`check_coco_instances`) and the point fields
(``point_coords``/``point_labels``) are kept on each annotation.
"""
import json
import os

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from ..utils.paths import write_json_atomically
from .checks import AnnotationError, check_coco_instances
from .shapes import CATEGORIES, ensure_shapes
from .views import make_view


POINT_ANNOTATION_KEYS = ["point_coords", "point_labels"]
SHAPES_VIEWS = ("full", "box", "point", "semi_5", "semi_10", "semi_20", "semi_50")
# per-object mixed views (MODEL.MIXED_SUPERVISION): m % of the objects with masks, p % with points (none,
# 10 %, or every object without a mask), made from the full training file on first use (shapes and the
# prepared real datasets)
MIXED_VIEWS = tuple(f"mixed_{m}_{p}" for m in (0, 5, 10, 25, 50, 100)
                    for p in sorted({0, 10, 100 - m}) if m + p <= 100)


def load_checked_coco_json(json_file: str, image_root: str, dataset_name: str = None):
    """``load_coco_json`` after :func:`check_coco_instances`, keeping the point fields."""
    if not os.path.isfile(json_file):
        raise AnnotationError(f"{json_file}: annotation file not found (dataset {dataset_name!r})")
    try:
        with open(json_file) as f:
            coco = json.load(f)
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{json_file}: not valid JSON ({e})") from None
    check_coco_instances(coco, json_file, image_root)
    return load_coco_json(json_file, image_root, dataset_name, extra_annotation_keys=POINT_ANNOTATION_KEYS)


def unregister(name: str) -> None:
    """Forget a dataset name (so that it can be registered again, e.g. at another path)."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def register_wsis_coco_instances(name: str, metadata: dict, json_file: str, image_root: str,
                                 replace: bool = False) -> None:
    """Like detectron2's ``register_coco_instances``, with checks and point fields.

    Args:
        name: dataset name, e.g. ``"my_data_box"``.
        metadata: extra metadata (may be empty).
        json_file: COCO instance JSON; its supervision (masks, boxes, points)
            decides what the data loader yields.
        image_root: folder the images' ``file_name`` are relative to.
        replace: drop an existing registration of ``name`` first (else detectron2 refuses).
    """
    if replace:
        unregister(name)
    DatasetCatalog.register(name, lambda: load_checked_coco_json(json_file, image_root, name))
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata)


def shapes_root(cfg=None) -> str:
    """Folder of the shapes data: ``cfg.WSIS.SHAPES_ROOT`` or ``$DETECTRON2_DATASETS/shapes``."""
    if cfg is not None and cfg.WSIS.SHAPES_ROOT:
        return cfg.WSIS.SHAPES_ROOT
    return os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "shapes")


def derived_view_file(source_json: str, view: str) -> str:
    """``train_<view>.json`` beside ``source_json`` (a training file with every label), written from it
    with :func:`wsis_d2.data.views.make_view` (atomically) unless it is there. The seed and points per
    object are those ``wsis-d2 prepare`` recorded in the source's ``info`` (``view_seed``,
    ``view_num_points``; default 0 and 10), so that every view of a prepared folder draws alike."""
    path = os.path.join(os.path.dirname(source_json), f"train_{view}.json")
    if not os.path.isfile(path):
        with open(source_json) as f:
            coco = json.load(f)
        info = coco.get("info") or {}
        data = make_view(coco, view, num_points=info.get("view_num_points", 10), seed=info.get("view_seed", 0))
        try:
            write_json_atomically(path, data)  # a concurrent process may write the same file
        except OSError as e:
            raise AnnotationError(
                f"{path}: cannot be written ({e.strerror}); it is made from {source_json} on first use: "
                f"make it once where the folder can be written, e.g. wsis-d2 views --input {source_json} "
                f"--views {view} --seed {info.get('view_seed', 0)} (writes {path})") from e
    return path


def mixed_shapes_file(root: str, view: str) -> str:
    """``annotations/train_<view>.json`` of a mixed view of the shapes data in ``root``, made from
    ``train_all.json`` on first use."""
    ensure_shapes(root)
    return derived_view_file(os.path.join(root, "annotations", "train_all.json"), view)


def _load_shapes_view(view: str, root: str, name: str):
    if view.startswith("mixed_"):
        return load_checked_coco_json(mixed_shapes_file(root, view), root, name)
    files = ensure_shapes(root)
    return load_checked_coco_json(files[view], root, name)


def register_shapes(root: str = None, prefix: str = "shapes") -> None:
    """Register ``<prefix>_{full,box,point,semi_<p>,mixed_<m>_<p>,val}`` for the shapes data in ``root``
    (:func:`wsis_d2.autolabel.pseudo_views.register_shapes_pseudo` adds its pseudo-mask views).

    The data is generated on first use (when the dataset is first loaded), not
    at registration, so importing wsis_d2 writes nothing.
    """
    root = root or shapes_root()
    thing_classes = [c["name"] for c in CATEGORIES]
    for view in SHAPES_VIEWS + MIXED_VIEWS + ("val",):
        name = f"{prefix}_{view}"
        unregister(name)
        DatasetCatalog.register(name, lambda view=view, name=name: _load_shapes_view(view, root, name))
        json_name = "val.json" if view == "val" else f"train_{view}.json"
        MetadataCatalog.get(name).set(
            json_file=os.path.join(root, "annotations", json_name), image_root=root,
            evaluator_type="coco", thing_classes=thing_classes, supervision=view,
        )


# COCO 2017 train views a user makes with `wsis-d2 views` (the R-50 configs train on them).
COCO_VIEWS = ("box", "point")


def register_coco_views() -> None:
    """Register ``coco_2017_train_{box,point}``: ``instances_train2017_{box,point}.json`` beside
    detectron2's COCO files ($DETECTRON2_DATASETS/coco). Lazy: nothing is read until used."""
    root = os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "coco")
    for view in COCO_VIEWS:
        name = f"coco_2017_train_{view}"
        if name in DatasetCatalog.list():
            continue
        json_file = os.path.join(root, "annotations", f"instances_train2017_{view}.json")
        image_root = os.path.join(root, "train2017")
        DatasetCatalog.register(name, lambda j=json_file, r=image_root, n=name: _load_coco_view(j, r, n))
        MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco",
                                      supervision=view)


def _load_coco_view(json_file: str, image_root: str, name: str):
    if not os.path.isfile(json_file):
        raise AnnotationError(
            f"{json_file}: annotation file not found (dataset {name!r}); make it from COCO's "
            f"instances_train2017.json with: wsis-d2 views --input <coco>/annotations/instances_train2017.json "
            f"--views {name.rsplit('_', 1)[-1]}")
    return load_checked_coco_json(json_file, image_root, name)
