"""A private OpenSSH sshd on a free loopback port (temporary config, generated host key, ``-D -e``).

As root it authenticates the unprivileged test user created by ``.ci/install-sshd.sh`` (password
and key); as another user it can only authenticate that user, by key.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from monitor_pipeline.transport import TransportConfig, fingerprint
from monitor_pipeline_tests.servers.keys import known_hosts_line, public_line, write_private_key
from monitor_pipeline_tests.servers.net import free_port, wait_for_banner

SSHD_PATH = "/usr/sbin/sshd"
TEST_USER = os.environ.get("MONITOR_SSHD_TEST_USER", "monitor-sshd-test")
TEST_PASSWORD = os.environ.get("MONITOR_SSHD_TEST_PASSWORD", "monitor-sshd-test-pw")  # see .ci/install-sshd.sh


class SshdUnavailable(RuntimeError):
    """sshd (or the test user) is not installed; the message says how to fix it."""


@dataclass
class SshdTestServer:
    host: str
    port: int
    root: Path                # folder tests own (the server serves the whole filesystem)
    base_dir: Path            # local folder behind the URL's base
    url: str
    username: str
    password: str | None = field(repr=False)  # None when password login is impossible (not running as root)
    known_hosts: str
    host_key_fingerprint: str
    client_key: str
    log_file: Path
    workdir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def password_auth_available(self) -> bool:
        return self.password is not None

    def config(self, **overrides) -> TransportConfig:
        fields = dict(url=self.url, username=self.username, password=self.password or "",
                      known_hosts=self.known_hosts, connect_timeout=5.0, read_timeout=5.0)
        fields.update(overrides)
        return TransportConfig(**fields)

    def give_to_user(self, path: Path) -> None:
        """Make ``path`` (and, for a folder, everything below it) owned by the login user, so files a test
        prepared on disk can be replaced through sshd."""
        account = pwd.getpwnam(self.username)
        paths = [Path(path)] + (sorted(Path(path).rglob("*")) if Path(path).is_dir() else [])
        for item in paths:
            os.chown(item, account.pw_uid, account.pw_gid)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _config_text(port: int, workdir: Path, user: str, extra: list[str]) -> str:
    lines = [
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {workdir / 'ssh_host_ed25519_key'}",
        f"PidFile {workdir / 'sshd.pid'}", f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "PubkeyAuthentication yes", "PasswordAuthentication yes", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes no", "PermitRootLogin no", f"AllowUsers {user}", "MaxAuthTries 10",
        "MaxStartups 100", "LoginGraceTime 20", "Subsystem sftp internal-sftp", "ForceCommand internal-sftp",
        "AllowTcpForwarding no", "X11Forwarding no", "LogLevel VERBOSE", *extra,
    ]
    return "\n".join(lines) + "\n"


def start_sshd(base: str = "monitor") -> SshdTestServer:
    if not os.access(SSHD_PATH, os.X_OK):
        raise SshdUnavailable(f"OpenSSH sshd is not installed at {SSHD_PATH}; run .ci/install-sshd.sh "
                              "(apt-get install openssh-server)")
    as_root = os.geteuid() == 0
    if as_root:
        try:
            account = pwd.getpwnam(TEST_USER)
        except KeyError:
            raise SshdUnavailable(f"test user {TEST_USER!r} does not exist; run .ci/install-sshd.sh") from None
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    else:
        account = pwd.getpwuid(os.geteuid())

    workdir = Path(tempfile.mkdtemp(prefix="monitor-sshd-"))
    workdir.chmod(0o755)  # the test user must reach its data folder
    try:
        host_key = write_private_key(workdir / "ssh_host_ed25519_key", "ed25519")
        client_key = write_private_key(workdir / "client_ed25519", "ed25519")
        (workdir / "authorized_keys").write_text(public_line(client_key, "monitor-pipeline-test") + "\n")
        (workdir / "authorized_keys").chmod(0o644)
        root = workdir / "data"
        base_dir = root / base
        base_dir.mkdir(parents=True)
        for folder in (root, base_dir):
            os.chown(folder, account.pw_uid, account.pw_gid)
        server = _launch(workdir, account.pw_name)
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(known_hosts_line("127.0.0.1", server[0], host_key))
        return SshdTestServer(
            host="127.0.0.1", port=server[0], root=root, base_dir=base_dir,
            url=f"sftp://127.0.0.1:{server[0]}{base_dir}", username=account.pw_name,
            password=TEST_PASSWORD if as_root else None, known_hosts=str(known_hosts),
            host_key_fingerprint=fingerprint(host_key), client_key=str(workdir / "client_ed25519"),
            log_file=workdir / "sshd.log", workdir=workdir, process=server[1])
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _launch(workdir: Path, user: str) -> tuple[int, subprocess.Popen]:
    config = workdir / "sshd_config"
    extra = ["PerSourcePenalties no"]  # OpenSSH ≥ 9.8 would otherwise block 127.0.0.1 after failed logins
    last_error = ""
    for _ in range(3):  # the free port may be taken between choosing and binding
        port = free_port()
        config.write_text(_config_text(port, workdir, user, extra))
        check = subprocess.run([SSHD_PATH, "-t", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0 and "PerSourcePenalties" in check.stderr and extra:
            extra = []  # older OpenSSH: option unknown, and not needed
            config.write_text(_config_text(port, workdir, user, extra))
            check = subprocess.run([SSHD_PATH, "-t", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejected its test config {config}: {check.stderr.strip()}")
        log = open(workdir / "sshd.log", "ab")
        process = subprocess.Popen([SSHD_PATH, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    wait_for_banner("127.0.0.1", port, b"SSH-", timeout=0.5)
                    return port, process
                except TimeoutError:
                    continue
        except BaseException:
            process.kill()
            raise
        if process.poll() is None:
            process.kill()
        process.wait(5)
        last_error = (workdir / "sshd.log").read_text(errors="replace")
    raise RuntimeError(f"sshd did not start: {last_error.strip()[-2000:]}")
