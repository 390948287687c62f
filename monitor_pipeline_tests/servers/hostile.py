"""A server that takes connections and then never answers: the hung Monitor (or App4Sales) server of issue #12.

``HangingServer()`` accepts every TCP connection and never sends a byte (an FTP client waits for a
greeting that never comes, an HTTP client for an answer); ``HangingServer(greeting=b"220 …\\r\\n")``
sends the greeting, then reads and ignores whatever the client says (an FTP login that never gets an
answer). Connections are held open until the client gives up or the server stops; ``connections``
counts them, so a test can tell whether a tenant was looked at.
"""

from __future__ import annotations

import socket
import threading

from monitor_pipeline_tests.servers.net import accept_until


class HangingServer:
    def __init__(self, greeting: bytes = b"", host: str = "127.0.0.1"):
        self.greeting = greeting
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.host, self.port = host, self._sock.getsockname()[1]
        self.connections = 0
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=accept_until, args=(self._sock, self._stop, self._hold, self._count),
                                        name=f"hanging-server-{self.port}", daemon=True)
        self._thread.start()

    def _count(self) -> None:
        with self._count_lock:
            self.connections += 1

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            try:
                if self.greeting:
                    conn.sendall(self.greeting)
                while not self._stop.is_set():
                    try:
                        if conn.recv(4096) == b"":
                            return  # the client hung up
                    except socket.timeout:
                        continue
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)

    def __enter__(self) -> HangingServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
