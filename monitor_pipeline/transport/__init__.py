"""File transport to the Monitor file drop: FTP, FTPS (explicit TLS), SFTP and local folders (``file://``).

    with open_transport(TransportConfig.from_env()) as t:
        t.download("customers.xml", "/tmp/customers.xml")
        t.upload_atomic(xml_bytes, "customers/C123.xml")

Paths are relative to the URL's base folder and may not leave it. Every wait is bounded (pace.py): a
connect by MONITOR_FTP_CONNECT_TIMEOUT as a whole, each pause of a transfer by MONITOR_FTP_READ_TIMEOUT,
and a transfer's pace by MONITOR_FTP_MIN_RATE over MONITOR_FTP_RATE_WINDOW (``SlowTransferError``).
"""

from monitor_pipeline.transport.base import RemoteStat, Transport, split_path
from monitor_pipeline.transport.config import TransportConfig, parse_url
from monitor_pipeline.transport.connect import open_transport
from monitor_pipeline.transport.errors import (HostKeyChangedError, HostKeyError, RemoteExistsError, RemoteNotFoundError,
                                               SlowTransferError, TLSVerificationError, TransientTransportError,
                                               TransportAuthError, TransportError, UnsafePathError)
from monitor_pipeline.transport.hostkeys import fingerprint

__all__ = [
    "HostKeyChangedError", "HostKeyError", "RemoteExistsError", "RemoteNotFoundError", "RemoteStat", "SlowTransferError",
    "TLSVerificationError", "TransientTransportError",
    "Transport", "TransportAuthError", "TransportConfig", "TransportError", "UnsafePathError", "fingerprint",
    "open_transport", "parse_url", "split_path",
]
