"""wsis-d2: weakly-supervised instance segmentation for detectron2.

Importing this package registers its meta-architectures, backbones, mask
losses and the shapes datasets into detectron2's registries.
"""
__version__ = "0.1.0"

from . import data, modeling  # noqa: E402,F401  (registration)
from .config import add_wsis_config  # noqa: E402

data.register_shapes()
data.register_coco_views()

__all__ = ["add_wsis_config", "__version__"]
