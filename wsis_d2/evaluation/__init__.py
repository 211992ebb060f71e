from .coco import build_coco_evaluator, has_compiled_ops

__all__ = ["build_coco_evaluator", "has_compiled_ops"]
