"""Config keys that moved or were removed, so that an old YAML or override stops with one line naming
the key's new home (or why it is gone) instead of yacs' "Non-existent config key"."""
import os
from typing import Dict, Iterable, Iterator, Tuple

import yaml

from .errors import ConfigError

_REMOVED = ("removed: an experiment that did not help (its measurements are in benchmarks/README.md; "
            "its code last exists at commit 8077259)")

# old key -> its new key
MOVED_KEYS: Dict[str, str] = {
    # the teacher of BoxTeacher and SIM: one node for both
    **{f"MODEL.{method}.{key}": f"MODEL.TEACHER.{key}"
       for method in ("BOX_TEACHER", "SIM") for key in ("MOMENTUM", "IOU_THRESH", "MASK_THRESH")},
    "MODEL.BOX_TEACHER.USE_TEACHER_INFERENCE": "MODEL.TEACHER.USE_FOR_INFERENCE",
    "MODEL.SIM.USE_TEACHER_INFERENCE": "MODEL.TEACHER.USE_FOR_INFERENCE",
}

# old key, or node with everything under it -> why it is gone
REMOVED_KEYS: Dict[str, str] = {
    "MODEL.BOX_TEACHER.CONFIDENCE_PIXEL_WEIGHTS": _REMOVED,
    "MODEL.BOX_TEACHER.FOREGROUND_PIXEL_WEIGHT": _REMOVED,
    "MODEL.BOX_TEACHER.BACKGROUND_COLOR": _REMOVED,
}


def moved_key_message(key: str):
    """What became of ``key`` (a dotted config key), or None when it did not move."""
    if key in MOVED_KEYS:
        return f"{key} has moved to {MOVED_KEYS[key]}"
    for old, reason in REMOVED_KEYS.items():
        if key == old or key.startswith(old + "."):
            return f"{key} was {reason}"
    return None


def _dotted_keys(node: dict, prefix: str = "") -> Iterator[str]:
    for name, value in node.items():
        key = prefix + str(name)
        if isinstance(value, dict):
            yield from _dotted_keys(value, key + ".")
        else:
            yield key


def _yaml_chain(config_file: str) -> Iterator[Tuple[str, dict]]:
    """(file, its YAML mapping) for ``config_file`` and the ``_BASE_`` files it names, as detectron2
    resolves them; a file that cannot be read or parsed ends the chain (the merge reports it)."""
    seen = set()
    while config_file and config_file not in seen:
        seen.add(config_file)
        try:
            with open(config_file) as f:
                data = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            return
        if not isinstance(data, dict):
            return
        yield config_file, data
        base = data.get("_BASE_")
        if not isinstance(base, str):
            return
        base = os.path.expanduser(base)
        if not base.startswith(("/", "https://", "http://")):
            base = os.path.join(os.path.dirname(config_file), base)
        config_file = base


def check_moved_keys(config_file: str = "", opts: Iterable = ()) -> None:
    """Raise :class:`ConfigError` naming the first moved or removed key that ``config_file`` (or a
    ``_BASE_`` of it) or the ``KEY VALUE`` overrides ``opts`` set, where it is and where it went."""
    for path, data in _yaml_chain(config_file):
        for key in _dotted_keys({k: v for k, v in data.items() if k != "_BASE_"}):
            message = moved_key_message(key)
            if message:
                raise ConfigError(f"{path}: {message}")
    for key in list(opts)[::2]:
        message = moved_key_message(str(key))
        if message:
            raise ConfigError(f"command-line override: {message}")
