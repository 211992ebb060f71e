"""Build the config of a run: detectron2 defaults + wsis-d2 keys + file + command-line overrides."""
import logging

import torch
from detectron2.config import get_cfg
from detectron2.engine import default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..config import add_wsis_config
from ..data.register import prepare_datasets

logger = logging.getLogger(__name__)


def build_config(config_file: str = "", opts=()):
    """The merged, unfrozen config (no side effects)."""
    cfg = get_cfg()
    add_wsis_config(cfg)
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        # detectron2 defaults to CUDA; on a CPU-only machine run there instead of failing.
        logging.getLogger("wsis_d2").warning("MODEL.DEVICE is %r but CUDA is unavailable: using the CPU", cfg.MODEL.DEVICE)
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def setup(args):
    """Config of a ``train_net.py`` run: merged, frozen, logged; the shapes data generated if needed."""
    cfg = build_config(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="wsis_d2", abbrev_name="wsis")
    prepare_datasets(cfg)
    return cfg
