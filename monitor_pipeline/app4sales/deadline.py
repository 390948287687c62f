"""A deadline on the whole answer of one HTTP attempt (SPEC §5: "every wait is bounded").

``requests``' read timeout is per socket read: a server that trickles one byte a second never
trips it and holds the call for as long as it likes. :class:`DeadlineAdapter` is an
``HTTPAdapter`` whose connections register themselves, when they connect and when they send a
request, with the attempt running in the current thread (:func:`deadline`). When the attempt's
deadline (``lib.deadline.Deadline``) passes before the answer is complete, its timer shuts the
registered sockets down: the blocked read returns at once, ``requests`` raises, and ``expired``
tells the caller why, so that it reports a timeout (retried like any other) instead of a dropped
connection.

The sockets are shut down at the OS level (``socket.socket.shutdown``), which is safe from
another thread for TLS sockets as well; urllib3 discards a connection whose read failed, so a
shut-down socket never goes back to the pool.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from monitor_pipeline.lib.deadline import Deadline

_current = threading.local()


class _Connections:
    """The connections one attempt used; shut down at once when the attempt's deadline has passed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        self.closed = False

    def register(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            closed = self.closed
        if closed:  # registered after the deadline: do not let it start
            _shutdown(connection)

    def shut_down(self) -> None:
        with self._lock:
            self.closed = True
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)


def _shutdown(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _register(connection: HTTPConnection) -> None:
    current = getattr(_current, "connections", None)
    if current is not None:
        current.register(connection)


class _Tracked:
    """Mixin: register with the current attempt on connect and on every request (keep-alive reuse)."""

    def connect(self) -> None:
        _register(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args, **kwargs) -> None:
        _register(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Tracked, HTTPConnection):
    pass


class _HTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connections obey :func:`deadline`."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


@contextmanager
def deadline(seconds: float | None) -> Iterator[Deadline | None]:
    """Bound everything the current thread does through a :class:`DeadlineAdapter` to ``seconds``;
    the yielded :class:`~monitor_pipeline.lib.deadline.Deadline` says whether it ``expired``."""
    if seconds is None:
        yield None
        return
    connections = _Connections()
    previous = getattr(_current, "connections", None)
    _current.connections = connections
    try:
        with Deadline(seconds, connections.shut_down) as bound:
            yield bound
    finally:
        _current.connections = previous
