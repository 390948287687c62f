"""An unchanged customers.xml is not parsed again: the frames of the run that parsed it are reused.

The key covers everything the frames depend on: the file's SHA-256, the extra customer data, the
normalize settings, and the source code of ``monitor_pipeline.customers`` itself (so a new rule
never reuses frames made by the old one). ``customer_frames`` config ``reparse: true`` forces a parse.
"""

import hashlib
import json
from pathlib import Path

import dagster as dg
import pandas as pd

import monitor_pipeline.customers as customers_package
from monitor_pipeline.app4sales.hash_cache import tag_frames
from monitor_pipeline.defs.customer_sync.frame_metadata import TABLE_BYTES, frame_checks, preview, table_entries
from monitor_pipeline.customers import NormalizeSettings
from monitor_pipeline.resources.storage import FRAME_SUFFIX, MonitorStorage

FRAME_ASSETS = ("customers", "customer_addresses", "customer_contacts", "customer_dashboards", "customer_rejections")


def _normalizer_version() -> str:
    digest = hashlib.sha256()
    for source in sorted(Path(customers_package.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


NORMALIZER_VERSION = _normalizer_version()


def input_key(xml_sha256: str, settings: NormalizeSettings) -> str:
    extra = settings.extra_data
    if isinstance(extra, str | Path):
        extra = Path(extra).read_bytes() if Path(extra).exists() else None
    described = {
        "normalizer": NORMALIZER_VERSION,
        "customers_xml": xml_sha256,
        "extra_data": hashlib.sha256(extra).hexdigest() if extra else None,
        "language_map": dict(sorted((str(k), str(v)) for k, v in settings.language_map.items())),
        "default_action_price_list_code": settings.default_action_price_list_code,
        "customer_item_filter": settings.customer_item_filter,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _latest(context: dg.AssetExecutionContext, asset: str) -> dg.AssetMaterialization | None:
    partitions = [context.partition_key] if context.has_partition_key else None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=partitions), limit=1).records
    return records[0].asset_materialization if records else None


def reusable_frames(context: dg.AssetExecutionContext, key: str, storage: MonitorStorage):
    """The outputs and checks of the last parse when its key equals ``key`` and its frames are still where
    ``storage`` keeps them (the same folder or bucket, checked through its filesystem); else None."""
    previous = {asset: _latest(context, asset) for asset in FRAME_ASSETS}
    head = previous["customers"]
    if head is None or head.metadata.get("input_key") is None or head.metadata["input_key"].value != key:
        return None
    partition = context.partition_key if context.has_partition_key else None
    paths = {}
    for asset, materialization in previous.items():
        recorded = materialization.metadata.get("path") if materialization else None
        path = storage.path_for([asset], FRAME_SUFFIX, partition)
        # stored elsewhere (MONITOR_STORAGE_URL or _DIR changed since) or gone: parse again
        if recorded is None or recorded.value != str(path) or not storage.exists(path):
            return None
        paths[asset] = path
    frames = {asset: storage.read_frame(path) for asset, path in paths.items()}
    tag_frames(frames.values(), key)  # frames stored before they carried it (the upsert's hash cache key)
    context.log.info("customers.xml, extra data and settings are unchanged since the last parse: "
                     f"reusing its frames ({len(frames['customers']):,} customers) without parsing again")
    return _outputs(frames, head)


def _small(value) -> bool:
    """Whether a carried metadata value is within the table budget as serialized (one made by an older version,
    before metadata was bounded, may not be: it is dropped rather than copied into every later run)."""
    return len(dg.serialize_value(value)) <= TABLE_BYTES


def _outputs(frames: dict[str, pd.DataFrame], head: dg.AssetMaterialization):
    """The outputs and checks from the stored frames. The warnings are not a stored frame: their count and table
    are carried from the parse's materialization; the rejected customers are (``customer_rejections``): their
    count, table and check come from it, as in the parse."""
    rejected = frames.get("customer_rejections")
    carried_keys = ["warnings", "input_key", "source_format", "warnings_preview", "warnings_preview_rows"]
    if rejected is None:
        carried_keys += ["rejected_customers", "rejected", "rejected_rows"]
    carried = {k: head.metadata[k] for k in carried_keys if k in head.metadata and _small(head.metadata[k])}
    if rejected is not None:
        carried["rejected_customers"] = len(rejected)
        if len(rejected):
            carried.update(table_entries("rejected", rejected))
    for asset, frame in frames.items():
        metadata = {"row_count": dg.MetadataValue.int(len(frame)), **preview(frame)}
        if asset == "customers":
            metadata.update(carried)
            metadata["reparsed"] = False
        yield dg.Output(frame, output_name=asset, metadata=metadata)
    if rejected is None:
        rejected = head.metadata["rejected_customers"].value if "rejected_customers" in head.metadata else 0
    yield from frame_checks(frames["customers"], frames["customer_addresses"], frames["customer_contacts"], rejected)
