"""Pseudo-mask views: masks made by an autolabel backend from a box view (no GT mask is read),
written beside the views on first use.

- the shapes data: ``<prefix>_pseudo_{box,grabcut}``;
- the prepared real datasets (:mod:`wsis_d2.data.real`): ``<dataset>_train_pseudo_{box,grabcut}``.

Registered here, above the data layer, because making them runs :func:`autolabel`.
"""
import json
import logging
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..data.real import REAL_DATASETS, check_prepared, real_dataset_files, real_dataset_root
from ..data.register import load_checked_coco_json, shapes_root, unregister
from ..data.shapes import CATEGORIES, ensure_shapes
from ..utils.paths import write_json_atomically
from .labeler import autolabel

logger = logging.getLogger(__name__)

SHAPES_PSEUDO_BACKENDS = ("box", "grabcut")


def make_pseudo_view(box_json: str, image_root: str, backend: str, path: str) -> str:
    """``path``: the ``backend``'s masks for every box of ``box_json``, made unless it exists."""
    if not os.path.isfile(path):
        logger.info("Making pseudo masks with the %r backend from %s ...", backend, box_json)
        with open(box_json) as f:
            coco = json.load(f)
        labelled, stats = autolabel(coco, box_json, image_root, backend, workers=os.cpu_count() or 1, progress=False)
        write_json_atomically(path, labelled)  # concurrent makers never see half a file
        logger.info("%d pseudo masks at %.1f images/s -> %s", stats["annotations"], stats["images_per_s"], path)
    return path


def ensure_pseudo_view(root: str, backend: str) -> str:
    """``annotations/train_pseudo_<backend>.json`` of the shapes data, made from ``train_box.json`` on first use."""
    files = ensure_shapes(root)
    return make_pseudo_view(files["box"], root, backend,
                            os.path.join(root, "annotations", f"train_pseudo_{backend}.json"))


def _load_shapes_pseudo_view(backend: str, root: str, name: str):
    return load_checked_coco_json(ensure_pseudo_view(root, backend), root, name)


def register_shapes_pseudo(root: str = None, prefix: str = "shapes") -> None:
    """Register ``<prefix>_pseudo_{box,grabcut}`` for the shapes data in ``root`` (made when first loaded)."""
    root = root or shapes_root()
    thing_classes = [c["name"] for c in CATEGORIES]
    for backend in SHAPES_PSEUDO_BACKENDS:
        name = f"{prefix}_pseudo_{backend}"
        unregister(name)
        DatasetCatalog.register(name, lambda b=backend, n=name: _load_shapes_pseudo_view(b, root, n))
        MetadataCatalog.get(name).set(
            json_file=os.path.join(root, "annotations", f"train_pseudo_{backend}.json"), image_root=root,
            evaluator_type="coco", thing_classes=thing_classes, supervision=f"pseudo_{backend}",
        )


def _load_real_pseudo_view(dataset: str, backend: str, box_json: str, image_root: str, path: str, name: str):
    check_prepared(name, dataset, box_json)
    return load_checked_coco_json(make_pseudo_view(box_json, image_root, backend, path), image_root, name)


def register_real_pseudo(roots: dict = None) -> None:
    """Register ``<dataset>_train_pseudo_{box,grabcut}`` for every prepared real dataset (``roots``:
    name -> prepared folder, default ``$DETECTRON2_DATASETS/<name>``), made from its ``train_box.json``
    when first loaded (GrabCut: about a minute for Penn-Fudan's 120 photos on 2 cores)."""
    roots = roots or {}
    for dataset, info in REAL_DATASETS.items():
        root = roots.get(dataset) or real_dataset_root(dataset)
        box_json = real_dataset_files(root)["train_box"]
        image_root = os.path.join(root, "train")
        for backend in SHAPES_PSEUDO_BACKENDS:
            name = f"{dataset}_train_pseudo_{backend}"
            path = os.path.join(root, "annotations", f"train_pseudo_{backend}.json")
            unregister(name)
            DatasetCatalog.register(name, lambda d=dataset, b=backend, j=box_json, r=image_root, p=path, n=name:
                                    _load_real_pseudo_view(d, b, j, r, p, n))
            MetadataCatalog.get(name).set(json_file=path, image_root=image_root, evaluator_type="coco",
                                          thing_classes=list(info["thing_classes"]), supervision=f"pseudo_{backend}")
