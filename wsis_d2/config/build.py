"""Build a run's config: detectron2 defaults + wsis-d2 keys + a config file + command-line overrides."""
import logging
import os

import torch
import yaml
from detectron2.config import get_cfg
from detectron2.utils.logger import log_first_n

from .defaults import add_wsis_config
from .errors import ConfigError
from .moved_keys import check_moved_keys


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
