from .checks import AnnotationError, check_coco_instances
from .mapper import WSISDatasetMapper
from .real import register_real_datasets
from .register import register_coco_views, register_shapes, register_wsis_coco_instances
from .shapes import ensure_shapes, generate_shapes

__all__ = ["AnnotationError", "WSISDatasetMapper", "check_coco_instances", "ensure_shapes", "generate_shapes",
           "register_coco_views", "register_real_datasets", "register_shapes", "register_wsis_coco_instances"]
