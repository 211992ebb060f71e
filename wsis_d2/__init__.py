"""wsis-d2: weakly-supervised instance segmentation for detectron2.

Importing this package registers its meta-architectures, backbones, mask
losses, autolabel backends and the shapes datasets (with their pseudo-mask
views) into detectron2's registries.
"""
__version__ = "0.1.0"

import warnings  # noqa: E402

# detectron2 0.6 applies torch.jit.script to a few helpers when imported, and torch >= 2.10 answers each
# with a FutureWarning that no wsis-d2 user can act on; only that message is silenced
warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)

from . import autolabel, data, modeling  # noqa: E402,F401  (registration)
from .config import add_wsis_config  # noqa: E402

data.register_shapes()
autolabel.register_shapes_pseudo()
data.register_coco_views()
data.register_real_datasets()  # pennfudan_*, balloon_* at $DETECTRON2_DATASETS/{pennfudan,balloon}
autolabel.register_real_pseudo()  # <dataset>_train_pseudo_{box,grabcut}, made on first use

__all__ = ["add_wsis_config", "__version__"]
