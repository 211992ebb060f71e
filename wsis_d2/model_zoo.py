"""Load the configs shipped with wsis-d2, like ``detectron2.model_zoo``.

Example::

    from wsis_d2 import model_zoo
    cfg = model_zoo.get_config("CondInst/R18_shapes.yaml")
"""
from pathlib import Path

from detectron2.config import get_cfg

from .config import add_wsis_config

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"


def get_config_file(config_path: str) -> str:
    """Absolute path of a shipped config, e.g. ``"CondInst/R18_shapes.yaml"``."""
    path = CONFIG_ROOT / config_path
    if not path.is_file():
        available = list_configs()
        raise FileNotFoundError(
            f"{config_path!r} is not a wsis-d2 config. Available: {', '.join(available)}"
        )
    return str(path)


def get_config(config_path: str):
    """A detectron2 ``CfgNode`` with wsis-d2's keys, merged from a shipped config."""
    cfg = get_cfg()
    add_wsis_config(cfg)
    cfg.merge_from_file(get_config_file(config_path))
    return cfg


def list_configs():
    """Every shipped config, as paths relative to the config root."""
    return sorted(str(p.relative_to(CONFIG_ROOT)) for p in CONFIG_ROOT.glob("*/*.yaml"))


def print_configs(argv=None):
    """``wsis-d2 configs``: every shipped config and its path."""
    for name in list_configs():
        print(f"{name:<28} {get_config_file(name)}")
