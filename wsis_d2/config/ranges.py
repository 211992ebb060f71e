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
