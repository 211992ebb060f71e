"""The shapes data's pseudo-mask views: ``<prefix>_pseudo_{box,grabcut}``.

Masks made by an autolabel backend from the box view (no GT mask is read), written beside the shapes
views on first use. Registered here, above the data layer, because making them runs :func:`autolabel`.
"""
import json
import logging
import os
import tempfile

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..data.register import load_checked_coco_json, shapes_root, unregister
from ..data.shapes import CATEGORIES, ensure_shapes
from .labeler import autolabel

logger = logging.getLogger(__name__)

SHAPES_PSEUDO_BACKENDS = ("box", "grabcut")


def ensure_pseudo_view(root: str, backend: str) -> str:
    """``annotations/train_pseudo_<backend>.json`` of the shapes data, made from ``train_box.json`` on first use."""
    files = ensure_shapes(root)
    path = os.path.join(root, "annotations", f"train_pseudo_{backend}.json")
    if not os.path.isfile(path):
        logger.info("Making shapes pseudo masks with the %r backend from %s ...", backend, files["box"])
        with open(files["box"]) as f:
            coco = json.load(f)
        labelled, stats = autolabel(coco, files["box"], root, backend, workers=os.cpu_count() or 1, progress=False)
        # a unique temporary file, renamed into place: concurrent makers never see half a file
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".json.tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(labelled, f)
        os.replace(tmp, path)
        logger.info("%d pseudo masks at %.1f images/s -> %s", stats["annotations"], stats["images_per_s"], path)
    return path


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
