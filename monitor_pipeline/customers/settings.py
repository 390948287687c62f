"""Normalization settings (SPEC §2/§3), readable from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib.env import env_bool, env_json_object, env_str

DEFAULT_LANGUAGE_MAP = {"SV": "sv", "SE": "sv", "EN": "en", "GB": "en", "NO": "no", "NB": "no", "DA": "da",
                        "DK": "da", "FI": "fi", "DE": "de", "NL": "nl", "FR": "fr", "ES": "es", "PL": "pl"}
LANGUAGE_COUNTRY = {"sv": "SE", "en": "GB", "no": "NO", "da": "DK", "fi": "FI", "de": "DE", "nl": "NL",
                    "fr": "FR", "es": "ES", "pl": "PL"}


@dataclass(frozen=True)
class NormalizeSettings:
    """``language_map`` is merged over :data:`DEFAULT_LANGUAGE_MAP` (keys case-insensitive).

    ``extra_data``: extraCustomerData.csv as bytes, or a path (``str``/``Path``); ``None`` = none.
    A missing file at the given path means no extra data (SPEC §3).
    """

    language_map: Mapping[str, str] = field(default_factory=dict)
    default_action_price_list_code: str | None = None
    customer_item_filter: bool = False
    extra_data: str | Path | bytes | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                 extra_data: str | Path | bytes | None = None) -> "NormalizeSettings":
        language_map = env_json_object("MONITOR_LANGUAGE_MAP", environ)
        for key, value in language_map.items():
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"MONITOR_LANGUAGE_MAP: the value for {key!r} must be a non-empty string")
        return cls(
            language_map=language_map,
            default_action_price_list_code=env_str("MONITOR_DEFAULT_ACTION_PRICE_LIST_CODE", None, environ),
            customer_item_filter=env_bool("MONITOR_CUSTOMER_ITEM_FILTER", False, environ),
            extra_data=extra_data,
        )

    def merged_language_map(self) -> dict[str, str]:
        """Upper-cased Monitor code -> App4Sales code."""
        merged = dict(DEFAULT_LANGUAGE_MAP)
        merged.update({str(k).strip().upper(): str(v).strip() for k, v in self.language_map.items()})
        return merged
