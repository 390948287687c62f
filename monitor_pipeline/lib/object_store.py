"""Where the asset storage lives: a local folder or an object store named by an fsspec URL.

``check_storage_url`` is what the deployment settings run at definitions load: it refuses an unsupported
or malformed URL, and one whose fsspec package is not installed, with a one-line ``ConfigError`` naming the
variable first. Credentials never go in the URL: S3 takes them (and ``AWS_ENDPOINT_URL`` for an
S3-compatible store such as MinIO) from the standard AWS variables, read by botocore itself; GCS and Azure
from their own libraries' variables.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.transport.config import refuse_credentials

# scheme → the package that gives fsspec its filesystem
OBJECT_STORES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
_SCHEME = re.compile(r"\A([A-Za-z][A-Za-z0-9+.-]*)://")
_BUCKET = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_url(location: str) -> bool:
    """Whether ``location`` is written as a URL (``scheme://…``) rather than a folder."""
    return bool(_SCHEME.match(location))


def is_object_store(location: str) -> bool:
    match = _SCHEME.match(location)
    return bool(match) and match.group(1).lower() in OBJECT_STORES


def check_storage_url(url: str, variable: str) -> str:
    """``url`` checked: a folder as it is, ``file://`` as its folder, ``s3://bucket/prefix`` (also ``gs://``,
    ``az://``) without a trailing slash. A ConfigError starting with ``variable`` otherwise."""
    url = url.strip()
    match = _SCHEME.match(url)
    if not match:
        if _CONTROL.search(url):
            raise ConfigError(f"{variable} contains control characters")
        return url  # a folder
    scheme = match.group(1).lower()
    supported = "a folder, file://, " + ", ".join(f"{s}://" for s in ("s3", "gs", "az"))
    if scheme != "file" and scheme not in OBJECT_STORES:
        raise ConfigError(f"{variable}={url}: {scheme}:// is not supported (use {supported})")
    refuse_credentials(url, variable, "the store's own variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
    if _CONTROL.search(url):
        raise ConfigError(f"{variable} contains control characters")
    parts = urlsplit(url)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigError(f"{variable}={url}: a storage URL takes no ?query or #fragment")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"{variable}={url}: file:// names a folder on this machine (file:///path), "
                              f"not on host {parts.netloc}")
        folder = url2pathname(unquote(parts.path))
        if not folder or folder == "/":
            raise ConfigError(f"{variable}={url} names no folder (file:///path/to/folder)")
        return folder
    bucket = parts.netloc
    if not bucket:
        raise ConfigError(f"{variable}={url} names no bucket ({scheme}://bucket/prefix)")
    if not _BUCKET.match(bucket):
        raise ConfigError(f"{variable}={url}: {bucket!r} is not a bucket name")
    prefix = parts.path.strip("/")
    if prefix and any(segment in ("", ".", "..") for segment in prefix.split("/")):
        raise ConfigError(f"{variable}={url}: the prefix has an empty, '.' or '..' segment")
    _require_filesystem(scheme, variable, url)
    return f"{scheme}://{bucket}" + (f"/{prefix}" if prefix else "")


def _require_filesystem(scheme: str, variable: str, url: str) -> None:
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError:
        package = OBJECT_STORES[scheme]
        raise ConfigError(f"{variable}={url} needs the {package} package, which is not installed "
                          f"(pip install {package})") from None


def storage_options(location: str) -> dict:
    """The fsspec options of the store at ``location``: no listings cache, so an object deleted or written
    by another pod is seen at once (s3fs would otherwise keep a bucket's listing for the process's life)."""
    return {"use_listings_cache": False} if is_object_store(location) else {}
