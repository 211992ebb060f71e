"""Dataset mapper that carries every kind of weak label through augmentation.

It is detectron2's ``DatasetMapper`` (same augmentations, same image/box/mask
handling) plus PointSup-style points: ``point_coords`` are transformed with the
image (flip, resize) and stored per instance as

- ``gt_point_coords``: float tensor (N, P, 2), (x, y) in the augmented image;
- ``gt_point_labels``: float tensor (N, P), 1 = on the object, 0 = background,
  -1 = ignored (a point that left the image, or padding for instances with
  fewer than P points).

Which fields an image yields is decided by its annotations alone: a box view
yields no ``gt_masks``, a point view yields points and no ``gt_masks``.

Mixed supervision (an image whose annotations have masks or points on only some
objects): the image gets ``gt_masks`` (as ``BitMasks``) / points for all its
instances, all-zero masks and ignored (-1) points where an object has none, and
the per-instance flags ``gt_has_mask`` / ``gt_has_points`` (bool, N) say which
are real; every reader honours them (:mod:`wsis_d2.modeling.losses.per_object`).
No box is filled in as a mask and no point is invented. An image whose objects
all have (or all lack) a kind gets no flag for it.

An image that cannot be read (truncated, corrupt, not the size its JSON entry says) raises
:class:`~wsis_d2.data.checks.AnnotationError` naming the file; in training with
``WSIS.SKIP_BAD_IMAGES`` it is logged once and detectron2's loader takes another image instead.
"""
import logging

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.structures import Instances

from .checks import AnnotationError

logger = logging.getLogger(__name__)


def points_to_tensors(annos, transforms, image_shape, points_per_instance: int = 0):
    """Transform the annotations' points; return (coords (N, P, 2), labels (N, P)) or None.

    ``points_per_instance`` > 0 keeps only each object's first that many points.
    """
    if not any("point_coords" in a for a in annos):
        return None
    keep = points_per_instance if points_per_instance > 0 else None
    annos = [dict(a, point_coords=a.get("point_coords", [])[:keep], point_labels=a.get("point_labels", [])[:keep])
             for a in annos]
    num_points = max(1, max(len(a["point_coords"]) for a in annos))
    coords = np.zeros((len(annos), num_points, 2), np.float32)
    labels = np.full((len(annos), num_points), -1.0, np.float32)
    h, w = image_shape
    for i, ann in enumerate(annos):
        if not ann["point_coords"]:
            continue
        pts = transforms.apply_coords(np.asarray(ann["point_coords"], np.float64).reshape(-1, 2))
        lab = np.asarray(ann["point_labels"], np.float32)
        outside = (pts[:, 0] < 0) | (pts[:, 1] < 0) | (pts[:, 0] > w) | (pts[:, 1] > h)
        lab[outside] = -1.0
        coords[i, : len(pts)] = pts
        labels[i, : len(pts)] = lab
    return torch.as_tensor(coords), torch.as_tensor(labels)


class WSISDatasetMapper(DatasetMapper):
    """``DatasetMapper`` that also maps PointSup points (see the module docstring).

    Built from a config like its parent: ``WSISDatasetMapper(cfg, is_train)``.
    Masks are read only when an image's annotations have them.

    Args:
        points_per_instance: keep each object's first K points (``INPUT.POINTS_PER_INSTANCE``); 0 = all.
    """

    # with skip_bad_images: this many unreadable images drawn in a row stop training (a wrong image folder)
    MAX_BAD_IN_A_ROW = 20

    @configurable
    def __init__(self, is_train: bool = True, *, points_per_instance: int = 0, skip_bad_images: bool = False,
                 **kwargs):
        super().__init__(is_train, **kwargs)
        if points_per_instance < 0:
            raise ValueError(f"INPUT.POINTS_PER_INSTANCE must be >= 0, got {points_per_instance}")
        self.points_per_instance = points_per_instance
        self.skip_bad_images = skip_bad_images and is_train  # a test set is scored on every image
        # images to map instead of an unreadable one (set by the trainer: the training set)
        self.fallback_dataset = None
        self._skipped = set()

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        ret["points_per_instance"] = cfg.INPUT.POINTS_PER_INSTANCE
        ret["skip_bad_images"] = cfg.WSIS.SKIP_BAD_IMAGES
        return ret

    def __call__(self, dataset_dict):
        for _ in range(self.MAX_BAD_IN_A_ROW):
            try:
                return super().__call__(dataset_dict)
            except (OSError, SyntaxError, utils.SizeMismatchError) as e:  # Pillow's read, or check_image_size
                file_name = dataset_dict.get("file_name")
                reason = f"{file_name}: cannot be used as an image ({type(e).__name__}: {e})"
                if not self.skip_bad_images or self.fallback_dataset is None:
                    raise AnnotationError(f"{reason}; fix or remove it, or pass --skip-bad (WSIS.SKIP_BAD_IMAGES "
                                          "True) to train on the other images") from None
                if file_name not in self._skipped:  # once per file and loader process
                    self._skipped.add(file_name)
                    logger.warning(f"skipped: {reason}")
            # another image in its place (detectron2's own retry on None fails on Python >= 3.11)
            dataset_dict = self.fallback_dataset[np.random.randint(len(self.fallback_dataset))]
        raise AnnotationError(f"{self.MAX_BAD_IN_A_ROW} training images in a row could not be used (the last "
                              f"{reason}); is the image folder right?")

    def _transform_annotations(self, dataset_dict, transforms, image_shape):
        annos = [
            utils.transform_instance_annotations(obj, transforms, image_shape)
            for obj in dataset_dict.pop("annotations")
            if obj.get("iscrowd", 0) == 0
        ]
        if not self.use_instance_mask:
            for ann in annos:
                ann.pop("segmentation", None)
        has_mask = [("segmentation" in a) for a in annos]
        some_masks = any(has_mask) and not all(has_mask)
        if some_masks:
            # no mask drawn: an all-zero placeholder (dense BitMasks need one), flagged as not a label
            for ann, has in zip(annos, has_mask):
                if not has:
                    ann["segmentation"] = np.zeros(image_shape[:2], np.uint8)
        instances: Instances = utils.annotations_to_instances(
            annos, image_shape, mask_format="bitmask" if some_masks else self.instance_mask_format)
        if some_masks:
            instances.gt_has_mask = torch.tensor(has_mask, dtype=torch.bool)
        points = points_to_tensors(annos, transforms, image_shape, self.points_per_instance)
        if points is not None:
            instances.gt_point_coords, instances.gt_point_labels = points
            has_points = [bool(a.get("point_coords")) for a in annos]
            if not all(has_points):
                instances.gt_has_points = torch.tensor(has_points, dtype=torch.bool)
        if self.recompute_boxes and instances.has("gt_masks"):
            mask_boxes = instances.gt_masks.get_bounding_boxes()
            if some_masks:  # a placeholder's box is empty: keep the annotated one
                mask_boxes.tensor[~instances.gt_has_mask] = instances.gt_boxes.tensor[~instances.gt_has_mask]
            instances.gt_boxes = mask_boxes
        if some_masks:  # as filter_empty_instances, but a placeholder's emptiness does not drop its object
            keep = instances.gt_boxes.nonempty() & (instances.gt_masks.nonempty() | ~instances.gt_has_mask)
            dataset_dict["instances"] = instances[keep]
        else:
            dataset_dict["instances"] = utils.filter_empty_instances(instances)
