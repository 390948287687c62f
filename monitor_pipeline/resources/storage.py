"""Asset storage a data engineer can open: frames as Parquet, the raw export as the XML file itself.

``<base>/<asset key>[/<partition>].parquet`` for frames, ``….xml`` for the raw file, where the base is a
local folder or an object store (``MONITOR_STORAGE_URL=s3://bucket/prefix``, also ``gs://``, ``az://``):
pods that share no disk share the bucket. Built on Dagster's ``UPathIOManager`` (fsspec through
``universal_pathlib``), which gives the paths of assets and partitions.

A write never leaves a partial file under its final name: locally a temp file beside it, then a rename;
on an object store one upload that becomes the object only when it completes (a multipart upload is
aborted on a failure). The raw file is streamed both ways, never read into memory: it is uploaded from
the download's temp file, and a step that parses it gets a :class:`StoredFile`, whose
:meth:`StoredFile.local_path` is the stored file itself when it is local, else a temp copy that is
removed when the ``with`` ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import dagster as dg
import pandas as pd
from pydantic import Field
from upath import UPath

from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.lib.object_store import is_object_store, storage_options
from monitor_pipeline.lib.redact import redact

FRAME_SUFFIX = ".parquet"
CHUNK = 1024 * 1024          # bytes per read when a file is copied
BLOCK = 8 * 1024 * 1024      # bytes of an upload part (S3's smallest part is 5 MiB): memory bounded by it
_TEMP = ".tmp"


class NotMaterialized(FileNotFoundError):
    """Nothing is stored for the asset (or partition) yet."""


@dataclass(frozen=True)
class DownloadedFile:
    """An output: a file alone in a temp folder of its own, which the storage takes over. It moves (local)
    or uploads the file, then removes the folder, also when storing fails: Dagster does not resume a step
    whose output could not be stored, so the step's own ``with`` would only clean up when it is collected."""

    path: Path


@dataclass(frozen=True)
class StoredFile:
    """A raw file (``customers_xml``) in the storage, as a step that reads it gets it."""

    path: UPath

    @property
    def location(self) -> str:
        """The file's path, or its URL on an object store (what the ``path`` metadata shows)."""
        return str(self.path)

    @property
    def is_local(self) -> bool:
        return not is_object_store(str(self.path))

    @contextlib.contextmanager
    def local_path(self) -> Iterator[Path]:
        """A local path for a parser: the stored file itself, or a streamed temp copy (in a
        ``<name>-*`` folder under the system temp folder) removed when the ``with`` ends."""
        if self.is_local:
            yield Path(self.path)
            return
        with tempfile.TemporaryDirectory(prefix=f"{self.path.stem}-") as folder:
            local = Path(folder) / self.path.name
            with _storage_errors("read", self.path), self.path.fs.open(self.path.path, "rb", block_size=BLOCK) as src, \
                    open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            yield local


class MonitorStorage(dg.ConfigurableIOManager):
    """``<base_dir>/<asset key>[/<partition>].parquet`` for frames, ``….xml`` for the raw file."""

    base_dir: str = Field(description="folder, or fsspec URL of an object store (s3://bucket/prefix, gs://…, "
                                      "az://…), of the frames and the raw file")

    def _store(self) -> _UPathStore:
        return _UPathStore(self.base_path)

    @property
    def base_path(self) -> UPath:
        return UPath(self.base_dir, **storage_options(self.base_dir))

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if not isinstance(obj, pd.DataFrame | Path | DownloadedFile):
            raise TypeError(f"MonitorStorage stores DataFrames and files, not {type(obj).__name__}")
        try:
            with _storage_errors("write", self.base_path, context.asset_key.to_user_string()):
                self._store().handle_output(context, obj.path if isinstance(obj, DownloadedFile) else obj)
        finally:
            if isinstance(obj, DownloadedFile):
                shutil.rmtree(obj.path.parent, ignore_errors=True)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | Path | StoredFile:
        with _storage_errors("read", self.base_path, context.asset_key.to_user_string()):
            return self._store().load_input(context)

    def path_for(self, asset_key: Sequence[str], suffix: str, partition: str | None = None) -> UPath:
        """Where ``asset_key`` (one partition of it) is stored with ``suffix``: a ``pathlib.Path`` (a
        ``UPath`` subclass of it) for a local folder. ``str()`` of it is what the ``path`` metadata holds."""
        stem = self.base_path.joinpath(*asset_key)
        if partition is not None:
            stem = _partition_path(stem, partition)
        return _with_suffix(stem, suffix)

    def exists(self, path: UPath) -> bool:
        with _storage_errors("read", path):
            return path.exists()

    def read_frame(self, path: UPath, columns: list[str] | None = None) -> pd.DataFrame:
        """The stored frame at ``path``; only ``columns`` of it when given (Parquet reads no other)."""
        with _storage_errors("read", path):
            return _read_frame(path, columns)


class _UPathStore(dg.UPathIOManager):
    """The paths of ``UPathIOManager`` without a fixed extension: the object says it (``.parquet`` for a
    DataFrame, the file's own suffix for a file), so ``_get_path`` and friends give the stem."""

    extension = None

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)
        self._local = not is_object_store(str(base_path))
        self._written: UPath | None = None

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        return _partition_path(base_path, partition)

    def make_directory(self, path: UPath) -> None:
        # An object store has no folders; s3fs's mkdir would even create a missing bucket.
        if self._local:
            path.mkdir(parents=True, exist_ok=True)

    def _handle_transition_to_partitioned_asset(self, context: dg.OutputContext, path: UPath) -> None:
        if self._local:  # an object store has no file that blocks a folder
            super()._handle_transition_to_partitioned_asset(context, path)

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, pd.DataFrame):
            target = _with_suffix(path, FRAME_SUFFIX)
            self._write(target, lambda out: obj.to_parquet(out, index=False))
        else:
            target = _with_suffix(path, obj.suffix or ".bin")
            if self._local:
                if Path(obj).resolve() != Path(target).resolve():
                    self._replace_local(target, lambda tmp: shutil.move(str(obj), tmp))
            else:
                with open(obj, "rb") as src:
                    _upload(target, lambda out: shutil.copyfileobj(src, out, CHUNK))
        self._written = target

    def _write(self, target: UPath, write) -> None:
        if self._local:
            self._replace_local(target, write)
        else:
            _upload(target, write)

    @staticmethod
    def _replace_local(target: UPath, write) -> None:
        """``write(temp path)`` beside ``target``, then the rename: a reader sees the old file or the new one."""
        fd, tmp = tempfile.mkstemp(dir=Path(target).parent, prefix=target.name + ".", suffix=_TEMP)
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, dg.MetadataValue]:
        # replaces the stem that UPathIOManager puts under "path"
        return {"path": dg.MetadataValue.path(str(self._written))} if self._written is not None else {}

    def get_writing_output_log_message(self, path: UPath) -> str:
        return f"Storing {path}.* in {'the storage folder' if self._local else 'the object store'}"

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame | Path | StoredFile:
        wanted = context.dagster_type.typing_type
        if wanted in (StoredFile, Path):
            stored = StoredFile(self._raw_file(context, path))
            if wanted is Path:
                if not stored.is_local:
                    raise TypeError(f"{context.asset_key.to_user_string()} is on an object store: annotate the "
                                    "input StoredFile (its local_path() gives a temp copy)")
                return Path(stored.path)
            return stored
        frame = _with_suffix(path, FRAME_SUFFIX)
        if frame.exists():
            return _read_frame(frame)
        if wanted is pd.DataFrame:
            raise NotMaterialized(f"{context.asset_key.to_user_string()} has not been materialized yet (no {frame})")
        return StoredFile(self._raw_file(context, path))

    def _raw_file(self, context: dg.InputContext, stem: UPath) -> UPath:
        """The stored ``<stem>.<suffix>`` that is not a frame or a temp file."""
        prefix = stem.name + "."
        try:
            names = sorted(p.name for p in stem.parent.iterdir())
        except FileNotFoundError:
            names = []
        names = [n for n in names if n.startswith(prefix) and not n.endswith((_TEMP, FRAME_SUFFIX))]
        if not names:
            raise NotMaterialized(f"{context.asset_key.to_user_string()} has not been materialized yet "
                                  f"(no file at {stem}.*)")
        return stem.parent / names[0]


def _partition_path(stem: UPath, partition: str) -> UPath:
    """``stem / partition`` that stays under ``stem``: a leading ``/`` and ``..`` segments escaped, as
    Dagster's ``escape_leading_slash`` and ``escape_dotdot_segments`` do for hierarchical filesystems."""
    key = "%2F" + partition[1:] if partition.startswith("/") else partition
    return stem / "/".join("%2E%2E" if part == ".." else part for part in key.split("/"))


def _with_suffix(stem: UPath, suffix: str) -> UPath:
    """``stem`` + ``suffix`` (``acme.se`` → ``acme.se.parquet``: a dot in a partition key is no suffix)."""
    return stem.with_name(stem.name + suffix)


def _read_frame(path: UPath, columns: list[str] | None = None) -> pd.DataFrame:
    if not is_object_store(str(path)):
        return pd.read_parquet(Path(path), columns=columns)
    with path.fs.open(path.path, "rb", block_size=BLOCK) as handle:
        return pd.read_parquet(handle, columns=columns)


def _upload(target: UPath, write) -> None:
    """``write(file object)`` as one upload of ``target`` that becomes the object only when it is complete
    (fsspec's transactional file: S3's multipart upload, GCS's resumable upload), aborted on a failure."""
    out: IO[bytes] = target.fs.open(target.path, "wb", block_size=BLOCK, autocommit=False)
    try:
        write(out)
        out.close()
        out.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            out.discard()
        with contextlib.suppress(Exception):
            out.closed = True  # nothing more to flush: what was written is dropped
        raise


@contextlib.contextmanager
def _storage_errors(action: str, where: UPath, asset: str | None = None) -> Iterator[None]:
    """A failure of the object store as a ``dg.Failure`` naming the storage URL and the cause (a missing
    bucket, no access, no connection); never a credential. Local errors pass as they are."""
    if not is_object_store(str(where)):
        yield
        return
    try:
        yield
    except (dg.Failure, TypeError, NotMaterialized):
        raise
    except (FileNotFoundError, PermissionError) as exc:  # a missing bucket, no access
        raise _failure(action, where, asset, exc, transient=False) from None
    except Exception as exc:  # noqa: BLE001 - botocore/aiohttp errors: connection, timeout, throttling
        raise _failure(action, where, asset, exc, transient=True) from None


def _failure(action: str, where: UPath, asset: str | None, exc: BaseException, *, transient: bool) -> dg.Failure:
    variable = DeploymentSettings.variables()["storage_url"]
    what = f" {asset}" if asset else ""
    cause = redact(f"{type(exc).__name__}: {exc}", *(os.environ.get(v) for v in _SECRET_VARIABLES))
    return dg.Failure(description=f"The asset storage {where} ({variable}) could not {action}{what}: {cause}",
                      metadata={"storage": str(where)}, allow_retries=transient)


# the standard credential variables of the object stores' libraries: their values never reach a message
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
                     "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET")
