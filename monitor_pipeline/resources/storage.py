"""Asset storage a data engineer can open: frames as Parquet, the raw export as the XML file itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd


class MonitorStorage(dg.ConfigurableIOManager):
    """``<base_dir>/<asset key>[/<partition>].parquet`` for frames, ``….xml`` for the raw file."""

    base_dir: str

    def _stem(self, context: dg.OutputContext | dg.InputContext) -> Path:
        key = context.asset_key.path
        stem = Path(self.base_dir, *key)
        if context.has_asset_partitions:
            stem = stem / context.asset_partition_key
        return stem

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        stem = self._stem(context)
        stem.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, pd.DataFrame):
            target = stem.with_suffix(".parquet")
            tmp = target.with_suffix(".parquet.tmp")
            obj.to_parquet(tmp, index=False)
            tmp.replace(target)
        elif isinstance(obj, Path):
            target = stem.with_suffix(obj.suffix or ".bin")
            if obj.resolve() != target.resolve():
                shutil.move(str(obj), target)
        else:
            raise TypeError(f"MonitorStorage stores DataFrames and files, not {type(obj).__name__}")
        context.add_output_metadata({"path": dg.MetadataValue.path(str(target))})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | Path:
        stem = self._stem(context)
        parquet = stem.with_suffix(".parquet")
        if parquet.exists():
            return pd.read_parquet(parquet)
        files = sorted(p for p in stem.parent.glob(stem.name + ".*") if not p.name.endswith(".tmp"))
        if not files:
            raise FileNotFoundError(f"{context.asset_key.to_user_string()} has not been materialized yet (no file at {stem}.*)")
        return files[0]

    def path_for(self, asset_key: list[str], suffix: str, partition: str | None = None) -> Path:
        stem = Path(self.base_dir, *asset_key)
        if partition is not None:
            stem = stem / partition
        return stem.with_suffix(suffix)
