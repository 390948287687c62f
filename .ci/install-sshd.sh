#!/usr/bin/env bash
# Idempotent one-time setup for the OpenSSH sshd transport tests
# (monitor_pipeline_tests/servers/sshd.py starts its own sshd on a loopback port).
#  - installs openssh-server when /usr/sbin/sshd is missing (apt-get, non-interactive);
#  - creates /run/sshd (privilege-separation directory sshd insists on);
#  - when run as root: creates the unprivileged test user the password-auth tests log in as.
# The system sshd service is never enabled or started by this script.
set -euo pipefail

TEST_USER="${MONITOR_SSHD_TEST_USER:-monitor-sshd-test}"
TEST_PASSWORD="${MONITOR_SSHD_TEST_PASSWORD:-monitor-sshd-test-pw}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-sshd.sh: not root and no sudo; cannot install openssh-server" >&2; exit 1
    fi
fi

if [ ! -x /usr/sbin/sshd ]; then
    echo "install-sshd.sh: installing openssh-server"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends openssh-server
    # Package post-install may start the system service; the tests do not need it.
    if command -v service >/dev/null 2>&1; then $SUDO service ssh stop >/dev/null 2>&1 || true; fi
fi

$SUDO mkdir -p /run/sshd
$SUDO chmod 0755 /run/sshd

if ! id "$TEST_USER" >/dev/null 2>&1; then
    echo "install-sshd.sh: creating test user $TEST_USER"
    $SUDO useradd --create-home --shell /usr/sbin/nologin "$TEST_USER"
fi
echo "$TEST_USER:$TEST_PASSWORD" | $SUDO chpasswd

/usr/sbin/sshd -V 2>&1 || true
echo "install-sshd.sh: ok (sshd at /usr/sbin/sshd, test user $TEST_USER)"
