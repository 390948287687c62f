"""Bounded transfers and connects (SPEC §2; transport/pace.py), against real peers on 127.0.0.1:
pyftpdlib's ThrottledDTPHandler for FTP and FTPS, a paramiko SFTP server whose file reads and
writes trickle, a FIFO for a local folder, servers that trickle their banner or never answer a
step of the connect. A trickle fails as a transient error, retried, then a clear failure naming
the server and the path, in bounded time; a slow transfer above the minimum still succeeds.
The windows are a fraction of a second so the tests stay quick."""

from __future__ import annotations

import os
import threading
import time

import pytest

from monitor_pipeline.transport import SlowTransferError, TransientTransportError, TransportConfig, open_transport
from monitor_pipeline_tests.servers.net import TricklingServer
from monitor_pipeline_tests.transport.conftest import fast_retry

# a server moving 2,000 B/s is below 8,000 B/s: cut after a window of half a second
TRICKLE = 2_000
LIMITS = dict(min_rate=8_000, rate_window=0.5, read_timeout=2.0)
SLOW_BUT_ENOUGH = 50_000  # B/s, against a minimum of 8,000 B/s over half a second
ENOUGH = dict(min_rate=8_000, rate_window=0.5, read_timeout=5.0)


def start(kind: str, ftp_server_factory, sftp_server_factory, rate: int, direction: str):
    if kind == "sftp":
        return sftp_server_factory(file_rate=rate)
    limit = {"write_limit": rate} if direction == "download" else {"read_limit": rate}
    return ftp_server_factory(kind, **limit)


def transfers(server, kind: str, direction: str) -> int:
    """How many transfers of ``direction`` the server saw (each attempt is one)."""
    if kind == "sftp":
        return sum(1 for op in server.ops if op[0] == "open" and op[2] == ("r" if direction == "download" else "w"))
    return server.commands.count("RETR" if direction == "download" else "STOR")


def timed(fn):
    """Run ``fn``; ``timed.seconds`` is how long it took, also when it raised."""
    started = time.monotonic()
    try:
        fn()
    finally:
        timed.seconds = time.monotonic() - started


@pytest.mark.parametrize("kind", ["ftp", "ftps", "sftp"])
def test_trickling_download_is_cut_retried_then_fails_clearly(kind, ftp_server_factory, sftp_server_factory,
                                                              tmp_path):
    server = start(kind, ftp_server_factory, sftp_server_factory, TRICKLE, "download")
    (server.base_dir / "customers.xml").write_bytes(os.urandom(100_000))  # 50 s at the trickle
    sleeps: list[float] = []
    out = tmp_path / "local"
    with open_transport(server.config(**LIMITS), retry=fast_retry(attempts=2, sleeps=sleeps)) as t:
        with pytest.raises(SlowTransferError) as info:
            timed(lambda: t.download("customers.xml", out / "customers.xml"))
    message = str(info.value)
    assert f"127.0.0.1:{server.port}" in message and "'customers.xml'" in message
    assert "MONITOR_FTP_MIN_RATE=8000 B/s" in message and "MONITOR_FTP_RATE_WINDOW=0.5 s" in message
    assert "gave up after 2 attempts" in message and info.value.transient
    assert len(sleeps) == 1 and transfers(server, kind, "download") == 2  # retried once, from the start
    assert timed.seconds < 8, timed.seconds  # about 2 × 0.5 s; without the minimum: 2 × 50 s
    assert os.listdir(out) == []  # no partial local file


@pytest.mark.parametrize("kind", ["ftp", "ftps", "sftp"])
def test_trickling_upload_is_cut_retried_then_fails_clearly(kind, ftp_server_factory, sftp_server_factory):
    server = start(kind, ftp_server_factory, sftp_server_factory, TRICKLE, "upload")
    sleeps: list[float] = []
    with open_transport(server.config(**dict(LIMITS, read_timeout=0.7)),
                        retry=fast_retry(attempts=2, sleeps=sleeps)) as t:
        with pytest.raises(TransientTransportError) as info:
            timed(lambda: t.upload_atomic(os.urandom(200_000), "customers/C1.xml"))  # 100 s at the trickle
    message = str(info.value)
    assert f"127.0.0.1:{server.port}" in message and "'customers/C1.xml'" in message
    assert "gave up after 2 attempts" in message
    if kind == "sftp":  # the server acknowledges each write slowly: the pace falls below the minimum
        assert isinstance(info.value, SlowTransferError) and "MONITOR_FTP_MIN_RATE" in message
    else:  # the kernel takes the file at once, then the server's final reply is a silence past the read timeout
        assert "read timeout 0.7s" in message or isinstance(info.value, SlowTransferError), message
    assert len(sleeps) == 1 and transfers(server, kind, "upload") == 2
    assert timed.seconds < 10, timed.seconds
    assert sorted(os.listdir(server.base_dir / "customers")) == []  # each attempt's temp file was removed


@pytest.mark.parametrize("direction", ["download", "upload"])
@pytest.mark.parametrize("kind", ["ftp", "ftps", "sftp"])
def test_slow_transfer_above_the_minimum_succeeds(kind, direction, ftp_server_factory, sftp_server_factory,
                                                  tmp_path):
    server = start(kind, ftp_server_factory, sftp_server_factory, SLOW_BUT_ENOUGH, direction)
    data = os.urandom(50_000)  # a second: two windows
    (server.base_dir / "customers.xml").write_bytes(data)
    sleeps: list[float] = []
    with open_transport(server.config(**ENOUGH), retry=fast_retry(attempts=2, sleeps=sleeps)) as t:
        if direction == "download":
            timed(lambda: t.download("customers.xml", tmp_path / "customers.xml"))
            assert (tmp_path / "customers.xml").read_bytes() == data
        else:
            timed(lambda: t.upload_atomic(data, "customers/C1.xml"))
            assert (server.base_dir / "customers" / "C1.xml").read_bytes() == data
    assert sleeps == [] and transfers(server, kind, direction) == 1  # one attempt, never cut
    assert 0.6 < timed.seconds < 10, timed.seconds  # it did take longer than a window: the pace was checked


class TricklingFifo:
    """A FIFO in the drop folder fed by a writer thread: ``rate`` bytes per second (0: opens, never
    writes), reopened when a reader gave up, until ``stop()``: a local folder on a hanging or trickling
    mount."""

    def __init__(self, path, rate: int):
        self.path, self.rate = path, rate
        os.mkfifo(path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        while not self._stop.is_set():
            fd = os.open(self.path, os.O_WRONLY)  # blocks until a reader opens it (or stop() does)
            try:
                while not self._stop.wait(0.1):
                    if self.rate:
                        os.write(fd, b"x" * (self.rate // 10))
            except BrokenPipeError:
                pass  # the reader gave up: wait for the next one
            finally:
                os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        for _ in range(50):  # a writer waiting for a reader is let through; closing its end ends a stuck read
            if not self._thread.is_alive():
                break
            os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))
            self._thread.join(0.1)


@pytest.mark.parametrize("rate, error, expected", [
    (TRICKLE, SlowTransferError, "MONITOR_FTP_MIN_RATE=8000 B/s"),
    (0, TransientTransportError, "did not answer in time (read timeout 0.5s, MONITOR_FTP_READ_TIMEOUT)"),
], ids=["trickle", "silence"])
def test_local_folder_that_trickles_or_hangs_fails_clearly(tmp_path, rate, error, expected):
    drop = tmp_path / "drop"
    drop.mkdir()
    fifo = TricklingFifo(drop / "customers.xml", rate)
    sleeps: list[float] = []
    config = TransportConfig(url=f"file://{drop}", **dict(LIMITS, read_timeout=0.5))
    try:
        with open_transport(config, retry=fast_retry(attempts=2, sleeps=sleeps)) as t:
            with pytest.raises(error) as info:
                timed(lambda: t.download("customers.xml", tmp_path / "out" / "customers.xml"))
    finally:
        fifo.stop()
    message = str(info.value)
    assert expected in message and f"'customers.xml' on file://{drop}" in message
    assert "gave up after 2 attempts" in message and len(sleeps) == 1
    assert timed.seconds < 6, timed.seconds


def _trickling(kind: str, **kwargs):
    server = TricklingServer(**kwargs)
    return server, TransportConfig(url=f"{kind}://127.0.0.1:{server.port}/x", username="u", password="pw-Zq9",
                                   connect_timeout=0.5)


@pytest.mark.parametrize("case", ["ftp banner that never ends", "ssh banner that never ends",
                                  "ftps TLS handshake never answered", "sftp authentication that hangs",
                                  "sftp subsystem never answered"])
def test_every_step_of_connecting_is_bounded_by_the_connect_timeout(case, sftp_server_factory, tmp_path):
    peer = None
    if case.startswith("ftp banner"):
        peer, config = _trickling("ftp", line=b"220-starting, please wait\r\n")
    elif case.startswith("ssh banner"):
        peer, config = _trickling("sftp", line=b"please wait\r\n")
    elif case.startswith("ftps"):
        peer, config = _trickling("ftps", first=b"220 ready\r\n234 AUTH TLS go ahead\r\n")  # then not a word
    else:
        stall = {"auth_delay": 10.0} if "authentication" in case else {"stall_subsystem": 10.0}
        server = sftp_server_factory(**stall)
        config = server.config(connect_timeout=0.5)
    sleeps: list[float] = []
    try:
        with pytest.raises(TransientTransportError) as info:
            timed(lambda: open_transport(config, retry=fast_retry(attempts=2, sleeps=sleeps)))
    finally:
        if peer is not None:
            peer.stop()
    message = str(info.value)
    assert "in time" in message and "connect timeout 0.5s" in message, message
    assert f"127.0.0.1:{config.parsed.port}" in message and "gave up after 2 attempts" in message
    assert "pw-Zq9" not in message and len(sleeps) == 1
    assert timed.seconds < 4, timed.seconds  # 2 × 0.5 s; without the deadline: never, or 10 s per attempt
