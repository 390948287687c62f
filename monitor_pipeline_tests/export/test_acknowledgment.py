"""acknowledge(): exported customers against customers.xml and Monitor's customers/ folder (export/acknowledgment.py)."""

from datetime import datetime, timedelta, timezone

from monitor_pipeline.app4sales.state import ExportRecord
from monitor_pipeline.export.acknowledgment import acknowledge

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


def _record(code: str, hours_ago: float, **kw) -> ExportRecord:
    return ExportRecord(code, f"guid-{code}", f"customers/{code}.xml", NOW - timedelta(hours=hours_ago), **kw)


def test_overdue_pending_arrived_and_taken():
    records = [_record("OLD", 30), _record("NEW", 2), _record("HERE", 40), _record("GONE", 25),
               _record("SEEN", 50, arrived_at=NOW - timedelta(hours=20))]
    ack = acknowledge(records, present_codes={"HERE", "OTHER"}, folder_names=["OLD.xml", "NEW.xml", "HERE.xml"],
                      now=NOW, ack_hours=24)
    status = {r.code: (r.status, r.taken) for r in ack.rows}
    assert status == {"OLD": ("overdue", False), "NEW": ("pending", False), "HERE": ("arrived", False),
                      "GONE": ("overdue", True), "SEEN": ("arrived", True)}
    assert [r.code for r in ack.overdue] == ["OLD", "GONE"]  # the oldest first
    assert (ack.count("pending"), ack.count("arrived"), ack.taken) == (1, 2, 2)
    assert sorted(ack.newly_arrived) == ["HERE"]  # SEEN was noted before
    assert sorted(ack.newly_taken) == ["GONE", "SEEN"]


def test_a_folder_that_could_not_be_listed_leaves_taken_unknown_and_one_that_is_missing_means_taken():
    records = [_record("A", 1), _record("B", 1, taken_at=NOW - timedelta(minutes=5))]
    unknown = acknowledge(records, (), None, now=NOW, ack_hours=24)
    assert [(r.code, r.taken) for r in sorted(unknown.rows, key=lambda r: r.code)] == [("A", None), ("B", True)]
    assert unknown.newly_taken == []
    missing = acknowledge(records, (), [], now=NOW, ack_hours=24)
    assert missing.newly_taken == ["A"] and missing.taken == 2


def test_the_window_is_strict_and_an_arrived_code_stays_arrived():
    ack = acknowledge([_record("EDGE", 24), _record("LATE", 24.01)], (), [], now=NOW, ack_hours=24)
    assert {r.code: r.status for r in ack.rows} == {"EDGE": "pending", "LATE": "overdue"}
    gone_again = acknowledge([_record("X", 99, arrived_at=NOW - timedelta(hours=90))], (), [], now=NOW, ack_hours=24)
    assert gone_again.rows[0].status == "arrived" and gone_again.overdue == []


def test_the_description_of_thousands_of_overdue_customers_stays_small():
    from monitor_pipeline.defs.customer_sync.export_acknowledgment import ack_result

    records = [_record(f"C{i:05d}", 30 + i / 1000) for i in range(5000)]
    result = ack_result(acknowledge(records, (), [], now=NOW, ack_hours=24))
    assert not result.passed and len(result.description) < 12_000
    assert "C04999 (exported" in result.description  # the oldest first, described
    assert result.description.endswith("more (every overdue customer: the state's exports)")
    assert result.metadata["overdue"].value == 5000 and len(result.metadata["overdue_customers"].value.records) == 200
    few = ack_result(acknowledge(records[:30], (), [], now=NOW, ack_hours=24))
    assert all(f"C{i:05d}" in few.description for i in range(30))  # every one named when they fit
