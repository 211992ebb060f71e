"""Checks that a config's datasets fit its model, made before training starts.

Without them a class count below the data's fails inside the FCOS loss whenever a batch first holds a
high class id (possibly hours in), a count above it trains silently, a validation set whose categories
differ from the training set's is scored against the wrong classes, and a validation set with masks on
only some annotations fails inside pycocotools after training has finished.
"""
import logging
from typing import Dict, Sequence

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


def supervision_counts(dataset_dicts: list) -> Dict[str, int]:
    """How many (non-crowd) annotations there are, and how many have a mask, points, neither."""
    anns = [a for d in dataset_dicts for a in d.get("annotations", ()) if not a.get("iscrowd", 0)]
    masks = sum("segmentation" in a for a in anns)
    points = sum(bool(a.get("point_coords")) for a in anns)
    points_only = sum(bool(a.get("point_coords")) and "segmentation" not in a for a in anns)
    return {"total": len(anns), "mask": masks, "points": points, "points_no_mask": points_only,
            "box": len(anns) - masks - points_only}


def check_training_supervision(cfg, dataset_dicts: list, train_names: Sequence[str],
                               mask_losses: Dict[str, tuple], kinds_trained: Dict[str, set]) -> None:
    """The training labels fit the mask losses (mixed supervision or one kind everywhere).

    Args:
        dataset_dicts: the loaded training dicts of ``train_names``.
        mask_losses: {loss name: the labels it reads} of the model's mask losses.
        kinds_trained: {loss name: the kinds of object it trains under mixed supervision ("mask",
            "points", "box")}.

    Raises:
        ConfigError: without ``MODEL.MIXED_SUPERVISION``, a loss reads masks (points) that only some
            annotations have; with it, objects of a kind the data holds that no loss trains.
    """
    counts = supervision_counts(dataset_dicts)
    total, names = counts["total"], ", ".join(train_names)
    if total == 0 or not mask_losses:
        return
    if not cfg.MODEL.MIXED_SUPERVISION:
        for kind, label in (("mask", "masks"), ("points", "points")):
            readers = [n for n, labels in mask_losses.items() if label in labels]
            if readers and 0 < counts[kind] < total:
                raise ConfigError(
                    f"DATASETS.TRAIN {names}: only {counts[kind]} of its {total} annotations have "
                    f"{'a segmentation' if kind == 'mask' else 'points'}, and {readers[0]} needs them on every "
                    "object; for labels that differ per object set MODEL.MIXED_SUPERVISION True with losses "
                    "for each kind (configs/Mixed), or train on one view")
        return
    present = {"mask": counts["mask"], "points": counts["points_no_mask"], "box": counts["box"]}
    for kind, count in present.items():
        if count and not any(kind in kinds_trained[n] for n in mask_losses):
            what = {"mask": "a mask", "points": "a box and points", "box": "a box alone"}[kind]
            raise ConfigError(
                f"DATASETS.TRAIN {names}: {count} of its {total} objects have {what}, but none of the mask "
                f"losses {list(mask_losses)} trains such objects under MODEL.MIXED_SUPERVISION (masks: "
                "DiceMaskLoss; points: PointLoss; boxes: ProjectionLoss + PairwiseColorLoss)")
    if counts["points_no_mask"] and not any("points" in labels for labels in mask_losses.values()):
        logger.warning(f"DATASETS.TRAIN {names}: {counts['points_no_mask']} objects have points, but no mask "
                       "loss reads points (add PointLoss to use them)")
