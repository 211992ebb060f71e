"""The error of a run that cannot start as asked (raised before any training)."""


class ConfigError(ValueError):
    """A config file, override, weights path or run input that cannot be used; the message names it."""
