"""Quality of a teacher's pseudo masks over training, against GT masks the training never reads.

Self-training methods (BoxTeacher, SIM) learn from their teacher's pseudo
masks; how good those are, and how many GT boxes get one, explains their
final AP. :class:`PseudoMaskQualityHook` measures it every
``WSIS.PSEUDO_MASK_EVAL.PERIOD`` iterations on the first
``NUM_IMAGES`` images of ``DATASET`` (the training images *with* masks, e.g.
``shapes_train`` for a run on ``shapes_box``): the model pseudo-labels them
from their GT boxes exactly as in training, and the hook writes
``pseudo_mask/miou`` (mean IoU of the kept pseudo masks, binarised at 0.5)
and ``pseudo_mask/kept`` (share of GT boxes that got one) to the event storage
(``metrics.json``, TensorBoard). A benchmark-only measurement: it is off by
default and the model never sees these masks.
"""
import logging
from typing import List, Tuple

import torch
from detectron2.data import DatasetCatalog, MetadataCatalog, transforms as T
from detectron2.engine import HookBase
from detectron2.structures import BitMasks, Instances

from ..data.mapper import WSISDatasetMapper

logger = logging.getLogger(__name__)


def pseudo_mask_ious(pseudo_masks: torch.Tensor, weights: torch.Tensor, gt_masks: torch.Tensor) -> torch.Tensor:
    """
    Args:
        pseudo_masks: (G, H, W) in [0, 1]; weights: (G,) 0 = no pseudo mask for this GT box;
        gt_masks: (G, H, W) bool.

    Returns:
        (k,) IoU of each kept (weight > 0) pseudo mask, binarised at 0.5, with its GT mask.
    """
    kept = weights > 0
    pred = pseudo_masks[kept] >= 0.5
    gt = gt_masks[kept].bool()
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float()
    return inter / union.clamp(min=1.0)


class PseudoMaskQualityHook(HookBase):
    """Logs ``pseudo_mask/miou`` and ``pseudo_mask/kept`` every ``period`` iterations (and at the end).

    Args:
        cfg: the training config (its test-time resize and ``WSIS.PSEUDO_MASK_EVAL``).
        batch_size: images per ``pseudo_label`` call.
    """

    def __init__(self, cfg, batch_size: int = 4):
        settings = cfg.WSIS.PSEUDO_MASK_EVAL
        if not settings.DATASET:
            raise ValueError("WSIS.PSEUDO_MASK_EVAL.PERIOD is set but DATASET is empty: name a registered view of "
                             "the training images that has masks (e.g. shapes_full)")
        classes = [MetadataCatalog.get(name).get("thing_classes") for name in (settings.DATASET, cfg.DATASETS.TRAIN[0])]
        if None not in classes and classes[0] != classes[1]:
            raise ValueError(f"WSIS.PSEUDO_MASK_EVAL.DATASET {settings.DATASET} has the classes {classes[0]}, the "
                             f"training set {cfg.DATASETS.TRAIN[0]} {classes[1]}: name a view of the training images")
        self.period = settings.PERIOD
        self.dataset_name = settings.DATASET
        self.num_images = settings.NUM_IMAGES
        self.batch_size = batch_size
        mapper_args = WSISDatasetMapper.from_config(cfg, is_train=True)
        mapper_args.update(
            augmentations=[T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")],
            use_instance_mask=True, instance_mask_format="bitmask", recompute_boxes=False)
        self.mapper = WSISDatasetMapper(**mapper_args)
        self._inputs: List[dict] = []
        self._gt_masks: List[torch.Tensor] = []

    def before_train(self):
        dicts = DatasetCatalog.get(self.dataset_name)[: self.num_images]
        for d in dicts:
            if any("segmentation" not in a for a in d.get("annotations", [])):
                raise ValueError(f"WSIS.PSEUDO_MASK_EVAL.DATASET {self.dataset_name}: image {d['file_name']} has "
                                 "annotations without masks; name a view of the training images that has them")
            mapped = self.mapper(dict(d))
            gt = mapped["instances"]
            masks = gt.gt_masks.tensor if isinstance(gt.gt_masks, BitMasks) else gt.gt_masks
            self._gt_masks.append(masks.bool())
            # what the model gets in training: boxes and classes only
            boxes_only = Instances(gt.image_size, gt_boxes=gt.gt_boxes, gt_classes=gt.gt_classes)
            self._inputs.append(dict(mapped, instances=boxes_only))
        logger.info(f"Pseudo-mask quality: every {self.period} iterations on {len(self._inputs)} images of "
                    f"{self.dataset_name}")

    @torch.no_grad()
    def measure(self) -> Tuple[float, float]:
        """(mean IoU of the kept pseudo masks, share of GT boxes kept) on the held images."""
        model = getattr(self.trainer.model, "module", self.trainer.model)
        ious, num_gt = [], 0
        for start in range(0, len(self._inputs), self.batch_size):
            batch = self._inputs[start: start + self.batch_size]
            for labelled, gt_masks in zip(model.pseudo_label(batch), self._gt_masks[start: start + self.batch_size]):
                ious.append(pseudo_mask_ious(labelled.gt_pseudo_masks.float().cpu(), labelled.gt_pseudo_weights.cpu(),
                                             gt_masks))
                num_gt += len(gt_masks)
        ious = torch.cat(ious) if ious else torch.zeros(0)
        miou = float(ious.mean()) if ious.numel() else 0.0
        return miou, ious.numel() / max(num_gt, 1)

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self.period == 0 or next_iter == self.trainer.max_iter:
            miou, kept = self.measure()
            self.trainer.storage.put_scalars(**{"pseudo_mask/miou": miou, "pseudo_mask/kept": kept},
                                             smoothing_hint=False)
