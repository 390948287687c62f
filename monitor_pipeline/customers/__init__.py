"""Normalization of Monitor's customers.xml (SPEC §3/§4): pure pandas/lxml, no Dagster.

    from monitor_pipeline.customers import normalize_customers, NormalizeSettings
    result = normalize_customers("customers.xml", NormalizeSettings.from_env(extra_data=csv_path))

Dtypes of the frames: string columns are ``object`` with ``None`` for missing (so ``to_dict`` /
JSON never sees NaN); VatLiable, HidePrices, IsMainAddress, IsMainContactPerson are nullable
``boolean``; Discount is ``float64`` (NaN when missing); Sysmodified is an ISO string
``YYYY-MM-DDTHH:MM:SS`` (plus ``+HH:MM`` when the file gave an offset); Dashboard is ``bytes``.

Modules, each importing only modules listed before it: ``errors``, ``settings``, ``columns`` (column
and field names), ``schema`` (the raw tables both parsers make), ``scan`` and ``parse`` (customers.xml
-> raw tables), ``mapping``, ``warnings``, ``addresses``, ``contacts``, ``extra_data`` (value rules),
``frames`` (raw tables -> mapped frames), ``split`` (the two-process parse), ``normalize``
(``normalize_customers``: orchestration).
"""

from .columns import (ADDRESS_COLUMNS, CONTACT_COLUMNS, CUSTOMER_COLUMNS, DASHBOARD_COLUMNS, REJECTED_COLUMNS,
                      WARNING_COLUMNS)
from .errors import CustomersXmlError, ExtraDataError
from .normalize import NormalizedCustomers, normalize_customers
from .settings import DEFAULT_LANGUAGE_MAP, LANGUAGE_COUNTRY, NormalizeSettings

__all__ = [
    "normalize_customers", "NormalizeSettings", "NormalizedCustomers", "CustomersXmlError", "ExtraDataError",
    "CUSTOMER_COLUMNS", "ADDRESS_COLUMNS", "CONTACT_COLUMNS", "DASHBOARD_COLUMNS", "REJECTED_COLUMNS",
    "WARNING_COLUMNS", "DEFAULT_LANGUAGE_MAP", "LANGUAGE_COUNTRY",
]
