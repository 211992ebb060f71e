"""Build the config of a run: detectron2 defaults + wsis-d2 keys + file + command-line overrides."""
import logging
import os

import torch
import yaml
from detectron2.config import get_cfg
from detectron2.engine import default_setup
from detectron2.utils import comm
from detectron2.utils.logger import log_first_n, setup_logger

from ..config import ConfigError, add_wsis_config
from ..config.moved_keys import check_moved_keys
from ..data.register import prepare_datasets


def _reason(error: Exception) -> str:
    # KeyError's str() wraps its message in quotes; yacs and detectron2 put the key name in the message
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def build_config(config_file: str = "", opts=()):
    """The merged, unfrozen config (no side effects).

    Raises:
        ConfigError: a missing or unreadable config file (or ``_BASE_``), a key that moved or was removed
            (:mod:`wsis_d2.config.moved_keys`), an unknown key, a value of the wrong type, or overrides that
            are not ``KEY VALUE`` pairs.
    """
    cfg = get_cfg()
    add_wsis_config(cfg)
    if config_file:
        if not os.path.isfile(config_file):
            raise ConfigError(f"{config_file}: no such config file")
        check_moved_keys(config_file)
        try:
            cfg.merge_from_file(config_file)
        except (KeyError, ValueError, AssertionError, OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{config_file}: {_reason(e)}") from e
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"command-line overrides must be KEY VALUE pairs; got {len(opts)}: {opts}")
    check_moved_keys(opts=opts)
    try:
        cfg.merge_from_list(opts)
    except (KeyError, ValueError, AssertionError) as e:
        raise ConfigError(f"command-line override: {_reason(e)}") from e
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        # detectron2 defaults to CUDA; on a CPU-only machine run there instead of failing. Said once per
        # process: `train` builds the config for its early checks and again for the run.
        log_first_n(logging.WARNING, f"MODEL.DEVICE is {cfg.MODEL.DEVICE!r} but CUDA is unavailable: using the CPU",
                    name="wsis_d2", key="message")
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def check_weights(cfg, eval_only: bool, resume: bool) -> None:
    """Raise :class:`ConfigError` when the run would start from weights it cannot have.

    ``--resume`` with a checkpoint in ``OUTPUT_DIR`` loads that checkpoint; otherwise
    ``MODEL.WEIGHTS`` is loaded: a local path must exist, and a URL is downloaded now (or found in
    detectron2's cache). ``--eval-only`` without either would score a randomly initialised model, so it
    is refused.
    """
    if resume and os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")):
        return
    weights = cfg.MODEL.WEIGHTS
    # the R-50 configs name ImageNet backbone weights: evaluating them would score an untrained head
    if eval_only and (not weights or "ImageNetPretrained" in weights):
        raise ConfigError("--eval-only needs trained weights: add MODEL.WEIGHTS path/to/model_final.pth "
                          f"(or --resume with a checkpoint in OUTPUT_DIR {cfg.OUTPUT_DIR}); "
                          f"MODEL.WEIGHTS is {weights!r}")
    if weights and "://" not in weights and not os.path.isfile(weights):
        raise ConfigError(f"MODEL.WEIGHTS: {weights}: no such file")
    if "://" in weights:
        _fetch_weights(weights)


def _fetch_weights(url: str) -> None:
    # detectron2 downloads (or finds in its cache) a URL only after the training data has loaded, minutes
    # into a COCO run, and a machine without internet then ends in a long urllib traceback
    from detectron2.utils.file_io import PathManager

    try:
        PathManager.get_local_path(url)
    except OSError as e:  # urllib's URLError is an OSError
        raise ConfigError(f"MODEL.WEIGHTS: {url} cannot be downloaded ({e}); fetch it on a machine with "
                          "internet and pass MODEL.WEIGHTS path/to/the/file") from e


def setup(args):
    """Config of a ``train_net.py`` run: merged, frozen, logged; the shapes data generated if needed."""
    cfg = build_config(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="wsis_d2", abbrev_name="wsis")
    prepare_datasets(cfg)
    return cfg
