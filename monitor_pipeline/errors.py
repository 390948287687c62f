"""Errors shared across the package."""


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable (never its secret value)."""


class PipelineError(Exception):
    """Base of the errors of a peer or of a run (file transport, App4Sales, the sync). ``transient`` says
    whether trying again later may help (a timeout, a 503, a file still being written): the Dagster
    layer lets such a failure be retried, and sensors skip the tick instead of failing it."""

    transient: bool = False
