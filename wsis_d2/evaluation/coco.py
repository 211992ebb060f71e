"""COCO evaluation through detectron2's ``COCOEvaluator``."""
import logging

from detectron2.evaluation import COCOEvaluator

logger = logging.getLogger(__name__)


def has_compiled_ops() -> bool:
    """True when ``detectron2._C`` is a real compiled extension (not wsis-d2's fallback)."""
    try:
        from detectron2 import _C
    except ImportError:
        return False
    return not getattr(_C, "IS_WSIS_FALLBACK", False)


def build_coco_evaluator(cfg, dataset_name: str, output_dir: str) -> COCOEvaluator:
    """Box + mask COCO AP; the fast C++ COCOeval when compiled, pycocotools otherwise."""
    tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
    return COCOEvaluator(dataset_name, tasks=tasks, distributed=True, output_dir=output_dir,
                         use_fast_impl=has_compiled_ops())
