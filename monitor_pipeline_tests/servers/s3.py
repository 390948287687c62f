"""moto's S3 server (``ThreadedMotoServer``) in a background thread on 127.0.0.1: a real HTTP peer for
the object-storage tests, reached through s3fs/botocore exactly as a bucket on AWS or MinIO would be."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from moto.server import ThreadedMotoServer

# fake credentials: moto accepts any, and these must never be mistaken for real ones
ACCESS_KEY_ID = "test-monitor-access-key"
SECRET_ACCESS_KEY = "test-monitor-s3cret-key"
REGION = "eu-north-1"


@dataclass
class S3TestServer:
    host: str
    port: int
    _server: ThreadedMotoServer = field(repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point botocore (and so s3fs) at this server."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
                "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self) -> Any:
        """A boto3 S3 client of this server (for setting up and looking at buckets beside the code under test)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)

    def stop(self) -> None:
        self._server.stop()


def start_s3_server() -> S3TestServer:
    """Start the server on a free loopback port (the OS picks it: nothing to race for)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return S3TestServer(host=host, port=port, _server=server)
