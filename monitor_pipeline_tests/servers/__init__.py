"""Real servers on 127.0.0.1 for tests and the demo: pyftpdlib FTP/FTPS, an in-process paramiko SFTP
server, and OpenSSH sshd. Each ``start_*`` returns a running server object with ``url``, ``root``,
``base_dir``, ``username``, ``password`` and ``config(**overrides)``; call ``stop()`` when done."""

from monitor_pipeline_tests.servers.ftp import FTPTestServer, start_ftp_server
from monitor_pipeline_tests.servers.sftp import SFTPTestServer, start_sftp_server
from monitor_pipeline_tests.servers.sshd import SSHD_PATH, SshdTestServer, SshdUnavailable, start_sshd

__all__ = ["SSHD_PATH", "FTPTestServer", "SFTPTestServer", "SshdTestServer", "SshdUnavailable", "start_ftp_server",
           "start_sftp_server", "start_sshd"]
