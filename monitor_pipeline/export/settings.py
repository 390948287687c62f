"""Settings of the customer export (SPEC §2, §6), declared once with their variables."""

from __future__ import annotations

from monitor_pipeline.lib.settings import Settings, setting


class ExportSettings(Settings):
    """Whether new App4Sales customers are exported to Monitor, and how often the feed is polled."""

    create_customer: bool = setting(True, "MONITOR_CREATE_CUSTOMER", "export new App4Sales customers to Monitor "
                                    "(the export sensor runs by default; false: stopped by default)", tenant=True)
    export_poll_seconds: int = setting(30, "MONITOR_EXPORT_POLL_SECONDS", "seconds between two looks at the "
                                       "new-customer feed", ge=1, unit=" s")
    export_ack_hours: float = setting(24.0, "MONITOR_EXPORT_ACK_HOURS", "hours after an export when check "
                                      "exported_customers_arrived fails while customers.xml still lacks the customer",
                                      gt=0, unit=" h", tenant=True)
