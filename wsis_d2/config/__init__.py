from .defaults import add_wsis_config

__all__ = ["add_wsis_config"]
