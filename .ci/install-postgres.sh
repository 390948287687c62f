#!/usr/bin/env bash
# Idempotent one-time setup for the PostgreSQL tests (the sync state on MONITOR_STATE_URL):
# monitor_pipeline_tests/servers/postgres.py runs its own initdb + postgres on a loopback port.
#  - installs postgresql when no /usr/lib/postgresql/*/bin/initdb exists (apt-get, non-interactive);
#  - the package creates the postgres user the test server runs as when the tests run as root.
# The system PostgreSQL service (the package's cluster) is stopped and never needed.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-postgres.sh: not root and no sudo; cannot install postgresql" >&2; exit 1
    fi
fi

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    echo "install-postgres.sh: installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends postgresql
    # Package post-install may start the system cluster; the tests do not use it.
    if command -v service >/dev/null 2>&1; then $SUDO service postgresql stop >/dev/null 2>&1 || true; fi
fi

INITDB="$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)"
"$INITDB" --version
echo "install-postgres.sh: ok ($INITDB)"
