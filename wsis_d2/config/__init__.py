from .build import build_config
from .defaults import add_wsis_config
from .errors import ConfigError

__all__ = ["ConfigError", "add_wsis_config", "build_config"]
