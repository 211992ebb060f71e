"""Two small real-photo datasets a user would recognise, registered by name once prepared.

- ``pennfudan``: Penn-Fudan pedestrians (torchvision's detection fine-tuning tutorial; 170 photos,
  423 person masks as instance-id PNGs), split 120 train / 50 val with a fixed seed;
- ``balloon``: detectron2's custom-dataset tutorial (61 train + 13 val photos, 305 balloons as VIA
  polygons), with its own split.

``wsis-d2 prepare pennfudan|balloon --root <extracted folder>`` (:mod:`wsis_d2.convert.prepare`) writes
a prepared folder (default ``$DETECTRON2_DATASETS/<name>``)::

    <name>/annotations/train.json                 boxes + masks
                       train_{box,point}.json      the supervision views (wsis_d2.data.views)
                       train_semi_{5,10,20,50}.json
                       train_mixed_<m>_<p>.json    per-object mixes, made from train.json on first use
                       val.json
    <name>/train/<images>   <name>/val/<images>

and this module registers ``<name>_train``, ``<name>_train_<view>`` and ``<name>_val`` at it (on import
of wsis_d2, for the default folder): lazily, nothing is read until a dataset is used, and a folder
not prepared yet says how to prepare it.
"""
import os
from typing import Dict, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog

from .checks import AnnotationError
from .register import MIXED_VIEWS, derived_view_file, load_checked_coco_json, unregister

# name -> what the prepare command and the error messages need to know
REAL_DATASETS = {
    "pennfudan": {
        "thing_classes": ["person"],
        "short": "Penn-Fudan",
        "title": "Penn-Fudan pedestrians",
        "download": "https://www.cis.upenn.edu/~jshi/ped_html/ (PennFudanPed.zip)",
        "folder": "PennFudanPed",
    },
    "balloon": {
        "thing_classes": ["balloon"],
        "short": "balloon",
        "title": "balloon (detectron2's custom-dataset tutorial)",
        "download": "https://github.com/matterport/Mask_RCNN/releases (balloon_dataset.zip)",
        "folder": "balloon",
    },
}
# the training views written beside train.json (val keeps boxes + masks)
REAL_VIEWS = ("box", "point", "semi_5", "semi_10", "semi_20", "semi_50")
SPLITS = ("train", "val")


def real_dataset_root(name: str) -> str:
    """Default prepared folder of dataset ``name``: ``$DETECTRON2_DATASETS/<name>`` (default ./datasets)."""
    return os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), name)


def real_dataset_files(root: str) -> Dict[str, str]:
    """Registered-name suffix -> COCO file of a prepared folder: ``train``, ``train_<view>``, ``val``."""
    ann = os.path.join(root, "annotations")
    files = {"train": os.path.join(ann, "train.json")}
    files.update({f"train_{view}": os.path.join(ann, f"train_{view}.json") for view in REAL_VIEWS + MIXED_VIEWS})
    files["val"] = os.path.join(ann, "val.json")
    return files


def check_prepared(name: str, dataset: str, json_file: str) -> None:
    """AnnotationError saying how to prepare ``dataset`` when its ``json_file`` (of ``name``) is missing."""
    if not os.path.isfile(json_file):
        info = REAL_DATASETS[dataset]
        raise AnnotationError(
            f"{json_file}: not found (dataset {name!r}); prepare {info['title']} from its extracted "
            f"{info['folder']} folder with: wsis-d2 prepare {dataset} --root path/to/{info['folder']} "
            f"--output {os.path.dirname(os.path.dirname(json_file))} (download: {info['download']})")


def _load_real(name: str, dataset: str, view: str, json_file: str, image_root: str):
    if view in MIXED_VIEWS:  # made from train.json on first use
        source = os.path.join(os.path.dirname(json_file), "train.json")
        check_prepared(name, dataset, source)
        json_file = derived_view_file(source, view)
    check_prepared(name, dataset, json_file)
    return load_checked_coco_json(json_file, image_root, name)


def register_real_dataset(dataset: str, root: Optional[str] = None) -> Dict[str, str]:
    """Register ``<dataset>_train``, ``<dataset>_train_<view>`` and ``<dataset>_val`` at the prepared
    folder ``root`` (default :func:`real_dataset_root`), replacing earlier registrations of those names.

    Returns:
        registered name -> its COCO file.
    """
    if dataset not in REAL_DATASETS:
        raise KeyError(f"unknown dataset {dataset!r}; known: {', '.join(REAL_DATASETS)}")
    root = root or real_dataset_root(dataset)
    names = {}
    for suffix, json_file in real_dataset_files(root).items():
        name = f"{dataset}_{suffix}"
        split, _, view = suffix.partition("_")
        image_root = os.path.join(root, split)
        unregister(name)
        DatasetCatalog.register(name, lambda n=name, v=view, j=json_file, r=image_root:
                                _load_real(n, dataset, v, j, r))
        MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco",
                                      thing_classes=list(REAL_DATASETS[dataset]["thing_classes"]),
                                      supervision=view or "full")
        names[name] = json_file
    return names


def register_real_datasets(roots: Optional[Dict[str, str]] = None) -> None:
    """Register every dataset of :data:`REAL_DATASETS` (``roots``: name -> prepared folder; default
    ``$DETECTRON2_DATASETS/<name>``)."""
    roots = roots or {}
    for dataset in REAL_DATASETS:
        register_real_dataset(dataset, roots.get(dataset))
