"""Where the sync state lives (SPEC §5 change detection and lock; issue #12): one entry point,
:func:`open_state`, for :func:`~monitor_pipeline.app4sales.sync.run_sync` and anything else.

A *location* is either the state folder (``MONITOR_STATE_DIR``: one SQLite file per administration,
:class:`~monitor_pipeline.app4sales.state.SyncState`, exactly as before) or a PostgreSQL URL
(``MONITOR_STATE_URL``: :class:`~monitor_pipeline.app4sales.state_postgres.PostgresSyncState`, for pods
that share no disk). Both keep the tenants apart: the SQLite files of a tenant in ``<state_dir>/<tenant>/``
(the layout the tenants have always had), its PostgreSQL rows in the scope ``<tenant>/<administration>``.
Nothing migrates between the two: switching the location starts from an empty state (every customer is
sent once more, which App4Sales answers as updates).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Union

from monitor_pipeline.app4sales.state import SyncState, state_file_name
from monitor_pipeline.app4sales.state_postgres import PostgresSyncState, is_state_url

AnyState = Union[SyncState, PostgresSyncState]


def open_state(location: str | Path, administration: str, tenant: str | None = None) -> AnyState:
    """The state of ``administration`` (of ``tenant``) at ``location``: a folder or a PostgreSQL URL.

    A URL that is not PostgreSQL's is a ``ConfigError``; an unreachable database a
    :class:`~monitor_pipeline.app4sales.state_postgres.StateStoreError` (the password never in either)."""
    if is_state_url(location):
        return PostgresSyncState.for_administration(str(location), administration, tenant)
    folder = Path(location) if tenant is None else Path(location) / tenant
    return SyncState.for_administration(folder, administration)


@contextmanager
def peek_state(location: str | Path, administration: str, tenant: str | None = None) -> Iterator[AnyState | None]:
    """The state as :func:`open_state` opens it, for reading only (a dry run): a SQLite file is opened read-only
    (not even its schema is touched), and None stands for a state folder with no file for the administration
    yet, so reading never creates one. (PostgreSQL's tables are made if missing; they hold no rows of the
    administration until a real sync.)"""
    if is_state_url(location):
        with open_state(location, administration, tenant) as state:
            yield state
        return
    path = (Path(location) if tenant is None else Path(location) / tenant) / state_file_name(administration)
    if not path.exists():
        yield None
        return
    with SyncState(path, read_only=True) as state:
        yield state
