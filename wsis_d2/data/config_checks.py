"""Checks that a config's datasets fit its model, made before training starts.

Without them a class count below the data's fails inside the FCOS loss whenever a batch first holds a
high class id (possibly hours in), a count above it trains silently, a validation set whose categories
differ from the training set's is scored against the wrong classes, and a validation set with masks on
only some annotations fails inside pycocotools after training has finished.
"""
import logging
from typing import Sequence

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..config import ConfigError
from ..config.ranges import config_value

logger = logging.getLogger(__name__)


def class_count_key(cfg) -> str:
    """The config key that sets the model's number of classes."""
    if cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN":
        return "MODEL.ROI_HEADS.NUM_CLASSES"
    return "MODEL.FCOS.NUM_CLASSES"


def _check_masks_all_or_none(dataset_dicts: list, dataset_name: str) -> bool:
    without = [(d, a) for d in dataset_dicts for a in d.get("annotations", ()) if "segmentation" not in a]
    total = sum(len(d.get("annotations", ())) for d in dataset_dicts)
    if without and len(without) < total:
        image = without[0][0]
        raise ConfigError(
            f"DATASETS.TEST {dataset_name}: {len(without)} of its {total} annotations have no 'segmentation' "
            f"(e.g. one on image {image.get('file_name')}, image_id {image.get('image_id')}); mask AP needs "
            "masks on all of them, box AP alone none")
    return not without


def has_masks_to_evaluate(dataset_name: str) -> bool:
    """True when every annotation of the dataset has a ``segmentation`` (or there are none), False when
    none has (box AP only). Loads the dataset.

    Raises:
        ConfigError: only some have one; COCO's mask evaluation would fail inside pycocotools.
    """
    return _check_masks_all_or_none(DatasetCatalog.get(dataset_name), dataset_name)


def _thing_classes(name: str):
    return MetadataCatalog.get(name).get("thing_classes")


def check_datasets_fit_model(cfg, train_names: Sequence[str], test_names: Sequence[str]) -> None:
    """Call once the training sets are loaded (their metadata then names their classes).

    Raises:
        ConfigError: the model has fewer classes than the training data, a test set's classes are not
            the training set's (in the same order), or a test set has masks on only some annotations.
    """
    key = class_count_key(cfg)
    num_classes = config_value(cfg, key)
    train_classes = _thing_classes(train_names[0]) if train_names else None
    if train_classes is not None:
        if num_classes < len(train_classes):
            raise ConfigError(f"{key} is {num_classes}, but DATASETS.TRAIN {train_names[0]} has "
                              f"{len(train_classes)} classes ({', '.join(map(str, train_classes[:8]))}"
                              f"{', ...' if len(train_classes) > 8 else ''}); set {key} {len(train_classes)}")
        if num_classes > len(train_classes):
            logger.warning(f"{key} is {num_classes}, but DATASETS.TRAIN {train_names[0]} has only "
                           f"{len(train_classes)} classes: the other outputs are never trained")
    for name in test_names:
        dataset_dicts = DatasetCatalog.get(name)  # loading it also sets its metadata's classes
        test_classes = _thing_classes(name)
        if train_classes is not None and test_classes is not None and list(test_classes) != list(train_classes):
            raise ConfigError(f"DATASETS.TEST {name} has the classes {list(test_classes)}, DATASETS.TRAIN "
                              f"{train_names[0]} {list(train_classes)}: predictions would be scored against "
                              "other classes; give both files the same categories")
        if cfg.MODEL.MASK_ON:
            _check_masks_all_or_none(dataset_dicts, name)
