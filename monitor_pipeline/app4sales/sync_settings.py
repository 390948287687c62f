"""Settings of the App4Sales customer sync (SPEC §2, §5)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib.env import env_bool, env_float, env_int

MAX_BATCH_SIZE = 100  # the contract's limit for POST customers/batch (more → 413)


@dataclass(frozen=True)
class SyncSettings:
    """How a sync run behaves. ``full_refresh`` comes from the run config, never from the environment."""

    batch_size: int = MAX_BATCH_SIZE
    enable_price_deduplication: bool = False
    deactivate_missing: bool = False
    deactivate_max_fraction: float = 0.1
    full_refresh: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"batch_size={self.batch_size!r} is out of range (1–{MAX_BATCH_SIZE})")
        if not 0.0 <= float(self.deactivate_max_fraction) <= 1.0:
            raise ConfigError(f"deactivate_max_fraction={self.deactivate_max_fraction!r} is out of range (0–1)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "SyncSettings":
        """Read ``MONITOR_BATCH_SIZE``, ``MONITOR_ENABLE_PRICE_DEDUPLICATION``, ``MONITOR_DEACTIVATE_MISSING``
        and ``MONITOR_DEACTIVATE_MAX_FRACTION``; a bad value raises ConfigError naming the variable."""
        return cls(
            batch_size=env_int("MONITOR_BATCH_SIZE", MAX_BATCH_SIZE, environ, low=1, high=MAX_BATCH_SIZE),
            enable_price_deduplication=env_bool("MONITOR_ENABLE_PRICE_DEDUPLICATION", False, environ),
            deactivate_missing=env_bool("MONITOR_DEACTIVATE_MISSING", False, environ),
            deactivate_max_fraction=env_float("MONITOR_DEACTIVATE_MAX_FRACTION", 0.1, environ, low=0.0, high=1.0),
        )
