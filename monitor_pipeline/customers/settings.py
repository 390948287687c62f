"""Normalization settings (SPEC §2/§3): ``NormalizeOptions`` declares them, ``NormalizeSettings`` adds a
run's extra customer data."""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, field_validator

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib.settings import Settings, setting

DEFAULT_LANGUAGE_MAP = {"SV": "sv", "SE": "sv", "EN": "en", "GB": "en", "NO": "no", "NB": "no", "DA": "da",
                        "DK": "da", "FI": "fi", "DE": "de", "NL": "nl", "FR": "fr", "ES": "es", "PL": "pl"}
LANGUAGE_COUNTRY = {"sv": "SE", "en": "GB", "no": "NO", "da": "DK", "fi": "FI", "de": "DE", "nl": "NL",
                    "fr": "FR", "es": "ES", "pl": "PL"}


class NormalizeOptions(Settings):
    """How customers.xml is mapped (SPEC §3). ``language_map`` is merged over :data:`DEFAULT_LANGUAGE_MAP`
    (keys case-insensitive); each value must be a non-empty language code."""

    language_map: dict[str, str] = setting(default_factory=dict, variable="MONITOR_LANGUAGE_MAP",
                                           description="JSON object, Monitor language code → App4Sales code",
                                           tenant=True)
    default_action_price_list_code: str | None = setting(None, "MONITOR_DEFAULT_ACTION_PRICE_LIST_CODE",
                                                         "action price list for customers without one",
                                                         tenant=True)
    customer_item_filter: bool = setting(False, "MONITOR_CUSTOMER_ITEM_FILTER", "fill the FixedItemFilter of "
                                         "customers from extra customer data", tenant=True)

    @field_validator("language_map", mode="before")
    @classmethod
    def _language_codes(cls, value: object) -> object:
        if isinstance(value, dict):
            for key, code in value.items():
                if not isinstance(code, str) or not code.strip():
                    raise ConfigError(f"MONITOR_LANGUAGE_MAP: the value for {key!r} must be a non-empty string")
        return value

    def merged_language_map(self) -> dict[str, str]:
        """Upper-cased Monitor code -> App4Sales code."""
        merged = dict(DEFAULT_LANGUAGE_MAP)
        merged.update({str(k).strip().upper(): str(v).strip() for k, v in self.language_map.items()})
        return merged


class NormalizeSettings(NormalizeOptions):
    """The options plus this run's extraCustomerData.csv: bytes, or a path (``str``/``Path``); ``None`` = none.
    A missing file at the given path means no extra data (SPEC §3)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    extra_data: str | Path | bytes | None = setting(None, None, "extraCustomerData.csv (bytes or a path)")
