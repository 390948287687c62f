"""The embedded default: a local folder standing in for Monitor's FTP server and the App4Sales sandbox.

With none of the SPEC §2 variables set, the pipeline runs against these, so a fresh clone works
without accounts or servers to install.
"""

from __future__ import annotations

from pathlib import Path

from monitor_pipeline.lib.settings import Settings, setting

REPO_ROOT = Path(__file__).resolve().parents[2]


class EmbeddedDefault(Settings):
    """Where the embedded default keeps its folder, sandbox database and Dagster home."""

    local_home: str | None = setting(None, "MONITOR_LOCAL_HOME", "folder of the embedded default's state "
                                     "(default .local in the repository)")


def local_home() -> Path:
    """Folder for the embedded default's state (``MONITOR_LOCAL_HOME``, else ``<repo>/.local``)."""
    return Path(EmbeddedDefault.from_env().local_home or REPO_ROOT / ".local").resolve()


def default_ftp_folder() -> Path:
    return local_home() / "monitor-ftp"


def default_ftp_url() -> str:
    return default_ftp_folder().as_uri()


def sandbox_db() -> Path:
    """The sandbox's data: what `make demo`, `make dev` and `make sandbox` all serve."""
    return local_home() / "sandbox.sqlite"


SANDBOX_HOST = "127.0.0.1"
SANDBOX_PORT = 8765
SANDBOX_ADMINISTRATION = "demo"
SANDBOX_USERNAME = "demo"
SANDBOX_PASSWORD = "demo"


def default_app4sales_url() -> str:
    return f"http://{SANDBOX_HOST}:{SANDBOX_PORT}/{SANDBOX_ADMINISTRATION}/api/app4sales/"
