"""Errors shared across the package."""


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable (never its secret value)."""
