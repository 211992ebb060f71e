"""COCO evaluation through detectron2's ``COCOEvaluator``."""
import logging

from detectron2.evaluation import COCOEvaluator

from ..data.config_checks import has_masks_to_evaluate

logger = logging.getLogger(__name__)


def has_compiled_ops() -> bool:
    """True when ``detectron2._C`` is a real compiled extension (not wsis-d2's fallback)."""
    try:
        from detectron2 import _C
    except ImportError:
        return False
    return not getattr(_C, "IS_WSIS_FALLBACK", False)


def build_coco_evaluator(cfg, dataset_name: str, output_dir: str) -> COCOEvaluator:
    """Box + mask COCO AP; the fast C++ COCOeval when compiled, pycocotools otherwise.

    AP counts as many detections per image as the model may output (``TEST.DETECTIONS_PER_IMAGE``
    for R-CNNs, ``MODEL.FCOS.POST_NMS_TOPK`` for FCOS-based models; COCO's 100 by default), so
    raising them for dense scenes is not silently undone by COCO's cap of 100. A dataset without
    masks (boxes only) gets box AP alone; one with masks on only some annotations is refused.
    """
    tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
    if cfg.MODEL.MASK_ON and not has_masks_to_evaluate(dataset_name):
        logger.warning(f"{dataset_name} has no masks: evaluating box AP only")
        tasks = ("bbox",)
    max_dets = max(cfg.TEST.DETECTIONS_PER_IMAGE, cfg.MODEL.FCOS.POST_NMS_TOPK)
    return COCOEvaluator(dataset_name, tasks=tasks, distributed=True, output_dir=output_dir,
                         use_fast_impl=has_compiled_ops(), max_dets_per_image=max_dets)
