"""The value ranges of config keys, checked by the modules that read them, so that a value outside
its range stops the run with one line instead of training silently wrong (a negative EMA momentum) or
failing deep inside a later step (zero prototypes)."""
from typing import Dict

from .errors import ConfigError


def config_value(cfg, key: str):
    """``cfg``'s value at a dotted ``key`` such as ``MODEL.TEACHER.MOMENTUM``."""
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def check_ranges(cfg, ranges: Dict[str, str], prefix: str = "") -> None:
    """Raise :class:`ConfigError` naming the first key whose value lies outside its interval.

    Args:
        ranges: key (after ``prefix``) -> interval in the usual notation: ``"[0, 1)"``, ``"(0, inf)"``.
    """
    for key, interval in ranges.items():
        key = prefix + key
        value = config_value(cfg, key)
        low, high = (float(bound) for bound in interval[1:-1].split(","))
        above = value >= low if interval[0] == "[" else value > low
        below = value <= high if interval[-1] == "]" else value < high
        if not (above and below):
            raise ConfigError(f"{key} is {value!r}; it must lie in {interval}")


def check_increasing_pair(cfg, key: str, low: float = 0.0, high: float = 1.0) -> None:
    """Raise :class:`ConfigError` unless ``key`` holds two values a <= b within [low, high]."""
    value = config_value(cfg, key)
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ConfigError(f"{key} is {tuple(value)!r}; it must be two values a <= b in [{low:g}, {high:g}]")


# detectron2 keys that fail as an assertion or a worker traceback (or train silently wrong) out of range
TRAINING_RANGES = {
    "SOLVER.IMS_PER_BATCH": "[1, inf)",
    "SOLVER.MAX_ITER": "[0, inf)",
    "SOLVER.BASE_LR": "[0, inf)",
    "SOLVER.CHECKPOINT_PERIOD": "[1, inf)",
    "DATALOADER.NUM_WORKERS": "[0, inf)",
    "DATALOADER.MASKED_IMAGE_REPEAT": "[1, inf)",
    "INPUT.MAX_SIZE_TRAIN": "[1, inf)",
    "WSIS.VIS_PERIOD": "[0, inf)",
}
TEST_RANGES = {"INPUT.MIN_SIZE_TEST": "[0, inf)", "INPUT.MAX_SIZE_TEST": "[1, inf)"}


def check_run_config(cfg, num_processes: int = 1, training: bool = True) -> None:
    """Raise :class:`ConfigError` for detectron2 solver / input values a run cannot use, before any data
    loads or process starts: a batch of 0, negative sizes, a batch that the processes cannot share."""
    check_ranges(cfg, TEST_RANGES)
    if not training:
        return
    check_ranges(cfg, TRAINING_RANGES)
    sizes = tuple(cfg.INPUT.MIN_SIZE_TRAIN)
    if not sizes or any(size <= 0 for size in sizes):
        raise ConfigError(f"INPUT.MIN_SIZE_TRAIN is {sizes!r}; it must hold sizes > 0 (pixels of the short side)")
    if cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING == "range" and len(sizes) != 2:
        raise ConfigError(f"INPUT.MIN_SIZE_TRAIN is {sizes!r}; with INPUT.MIN_SIZE_TRAIN_SAMPLING 'range' it must be "
                          "two sizes (low, high)")
    if cfg.SOLVER.IMS_PER_BATCH % num_processes:
        raise ConfigError(f"SOLVER.IMS_PER_BATCH {cfg.SOLVER.IMS_PER_BATCH} is the batch of all {num_processes} "
                          "processes together; it must be divisible by their number")
