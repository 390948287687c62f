"""``monitor-pipeline``: the demo against the embedded default, the UI, one sync from the terminal (``sync``),
the App4Sales sandbox, and a check of a deployment's whole path (``doctor``)."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from monitor_pipeline.app4sales.settings import App4SalesSettings
from monitor_pipeline.deployment import settings_table
from monitor_pipeline.lib import defaults
from monitor_pipeline.lib.redact import redact
from monitor_pipeline.transport.config import TransportConfig


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _prepare_dagster_home() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(defaults.local_home() / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(defaults.REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def seed_local_ftp_folder() -> Path:
    """Put the bundled sample export (flat and nested customers in one file) where the sync looks."""
    from monitor_pipeline.samples import write_demo_customers_xml

    folder = defaults.default_ftp_folder()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "customers.xml"
    write_demo_customers_xml(target)
    return target


@contextmanager
def embedded_sandbox(say=print, *, announce_stop: bool = False):
    """The App4Sales sandbox on 127.0.0.1:8765: reuse a running one, else start one in this process.
    Yields whether it was already running (then it goes on running after the block). ``say`` gets what
    it tells the user (``doctor`` prints it as its ``note`` lines), with ``announce_stop`` also the stop."""
    if _port_open(defaults.SANDBOX_HOST, defaults.SANDBOX_PORT):
        say(f"Using the App4Sales sandbox already running at {defaults.default_app4sales_url()}")
        yield True
        return
    from monitor_pipeline.sandbox import start_sandbox_in_thread

    db = defaults.sandbox_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    handle = start_sandbox_in_thread(db, host=defaults.SANDBOX_HOST, port=defaults.SANDBOX_PORT,
                                     users={defaults.SANDBOX_USERNAME: defaults.SANDBOX_PASSWORD})
    say(f"Started the App4Sales sandbox at {defaults.default_app4sales_url()} (data in {db})")
    try:
        yield False
    finally:
        handle.stop()
        if announce_stop:
            say("Stopped the App4Sales sandbox it had started")


def _sandbox_extras():
    from monitor_pipeline.sandbox.admin import SandboxAdmin

    return SandboxAdmin(defaults.default_app4sales_url(), defaults.SANDBOX_USERNAME, defaults.SANDBOX_PASSWORD)


def settings(_: argparse.Namespace) -> int:
    print(settings_table(), end="")
    return 0


def demo(_: argparse.Namespace) -> int:
    _prepare_dagster_home()
    for name in (TransportConfig.variables()["url"], App4SalesSettings.variables()["url"]):
        if os.environ.get(name):
            print(f"note: {name} is set; the demo runs against the embedded default regardless", file=sys.stderr)
            del os.environ[name]
    xml = seed_local_ftp_folder()
    print(f"Monitor's FTP folder (embedded default): {xml.parent}  ← customers.xml from the bundled samples")

    from dagster import DagsterInstance

    with embedded_sandbox() as still_running:
        extras = _sandbox_extras()
        for script in ("BeforeUpdateCustomers", "UpdateCustomers"):
            extras.register_script(script)
        from monitor_pipeline.definitions import defs

        instance = DagsterInstance.get()
        from monitor_pipeline.demo import print_sync_summary, run_export_demo, run_sync_demo, where_to_look

        sync = run_sync_demo(defs, instance)
        print_sync_summary(sync, defs)
        status = run_export_demo(defs, instance, extras) if sync.success else 1
    where_to_look(still_running)
    return status


def dev(_: argparse.Namespace) -> int:
    """Sandbox in this process, seeded folder, then `dg dev` on the workspace, started in DAGSTER_HOME (run
    from the repository, Dagster would warn that the repository's dagster.yaml is not the instance's)."""
    home = _prepare_dagster_home()
    xml = seed_local_ftp_folder()
    print(f"Monitor's FTP folder: {xml.parent}")
    with embedded_sandbox():
        _sandbox_extras().register_script("BeforeUpdateCustomers")
        _sandbox_extras().register_script("UpdateCustomers")
        print(f"App4Sales sandbox page: http://{defaults.SANDBOX_HOST}:{defaults.SANDBOX_PORT}/"
              f"{defaults.SANDBOX_ADMINISTRATION}/")
        command = [str(Path(sys.executable).with_name("dg")), "dev", "-w", str(defaults.REPO_ROOT / "workspace.yaml")]
        env = {**os.environ, "VIRTUAL_ENV": sys.prefix}  # dg compares it with the project's .venv
        try:
            return subprocess.call(command, cwd=home, env=env)
        except KeyboardInterrupt:
            return 0


def sync(args: argparse.Namespace) -> int:
    """``customer_sync_job`` once, from the terminal, on the instance of ``DAGSTER_HOME`` (the run is in the UI
    like any other): a bad setting is one line naming the variable (exit 2), not Dagster's CLI traceback."""
    from monitor_pipeline.errors import ConfigError, PipelineError

    _prepare_dagster_home()
    try:
        from monitor_pipeline.definitions import defs  # built from the environment as the module loads
    except (ConfigError, PipelineError) as exc:  # ConfigError and the other load errors: the sentence names the variable
        print(f"FAIL  settings: {exc}", file=sys.stderr)
        return 2
    job = defs.resolve_job_def("customer_sync_job")
    tenants = job.partitions_def.get_partition_keys() if job.partitions_def is not None else []
    if tenants and args.tenant not in tenants:
        given = f"--tenant {args.tenant!r} is not one of" if args.tenant else "give --tenant, one of"
        print(f"FAIL  tenant: customer_sync_job is partitioned by tenant (MONITOR_TENANTS_FILE): {given} "
              f"{', '.join(tenants)}", file=sys.stderr)
        return 2
    if args.tenant and not tenants:
        print(f"FAIL  tenant: --tenant {args.tenant!r} given, but there are no tenants (MONITOR_TENANTS_FILE is "
              "not set)", file=sys.stderr)
        return 2
    from dagster import DagsterInstance

    from monitor_pipeline.demo import QUIET, print_sync_summary

    config = {**QUIET, "ops": {"customer_upsert_batches": {"config": {"full_refresh": args.full_refresh,
                                                                      "dry_run": args.dry_run,
                                                                      "approve_mass_change": args.approve_mass_change}},
                               "customer_frames": {"config": {"reparse": args.reparse}}}}
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, run_config=config, raise_on_error=False,
                                        partition_key=args.tenant if tenants else None)
        print_sync_summary(result, defs)
        if not result.success and any("approve_mass_change" in (e.step_failure_data.error.message or "")
                                       for e in result.all_events if e.is_step_failure):
            print("From the terminal: monitor-pipeline sync --approve-mass-change (after a --dry-run to see the "
                  "changes)")
        print(f"Run {result.run_id}: {'success' if result.success else 'failure'} (DAGSTER_HOME "
              f"{os.environ['DAGSTER_HOME']})")
    return 0 if result.success else 1


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds greater than 0")
    return value


def doctor(args: argparse.Namespace) -> int:
    """One line per check (``monitor_pipeline/doctor.py``); 0 when none failed, 1 otherwise."""
    from monitor_pipeline import doctor as checks

    def note(text: str) -> None:
        print(checks.Check(checks.NOTE, "app4sales", f"embedded default: {text}").line(), flush=True)

    failed = False
    try:
        for check in checks.run(args.tenant, seconds=args.timeout, sandbox=lambda: embedded_sandbox(note, announce_stop=True)):
            print(check.line(), flush=True)
            failed = failed or check.failed
    except KeyboardInterrupt:
        print(checks.Check(checks.FAIL, "doctor", "interrupted").line())
        return 130
    except Exception as exc:  # noqa: BLE001 - e.g. the embedded sandbox would not start: one line, no traceback
        text = redact(f"{type(exc).__name__}: {exc}", *checks.environment_secrets())
        print(checks.Check(checks.FAIL, "doctor", text).line())
        return 1
    return 1 if failed else 0


def sandbox(rest: list[str]) -> int:
    from monitor_pipeline.sandbox.__main__ import main as sandbox_main

    return sandbox_main(rest, prog="monitor-pipeline sandbox")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sandbox"]:  # its own parser, --help included (argparse's REMAINDER cannot pass "--help" on)
        return sandbox(argv[1:])
    parser = argparse.ArgumentParser(prog="monitor-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="sync the bundled sample into the sandbox, then export a new customer").set_defaults(func=demo)
    commands.add_parser("dev", help="the Dagster UI with the embedded default running").set_defaults(func=dev)
    run = commands.add_parser(
        "sync", help="run customer_sync_job once from the terminal, on the DAGSTER_HOME instance",
        description="Run customer_sync_job once (customers.xml → frames → App4Sales) in this process, recorded on "
                    "the instance of DAGSTER_HOME like a run from the UI. A bad setting is one line naming the "
                    "variable (exit 2); exit 1 when the run fails, 0 when it succeeds.")
    run.add_argument("--tenant", metavar="NAME", help="the tenant (partition) to sync; required with "
                                                      "MONITOR_TENANTS_FILE")
    run.add_argument("--full-refresh", action="store_true", help="send every customer, not only the changed ones")
    run.add_argument("--dry-run", action="store_true", help="plan against App4Sales and send nothing (the plan "
                                                           "is printed and recorded as an observation)")
    run.add_argument("--approve-mass-change", action="store_true", help="send even when more than "
                     "MONITOR_MAX_CHANGE_FRACTION of the customers in App4Sales would be updated")
    run.add_argument("--reparse", action="store_true", help="parse customers.xml even if it is unchanged")
    run.set_defaults(func=sync)
    commands.add_parser("settings", help="every environment variable: meaning, default, bounds, per-tenant key "
                                         "(the README's table)").set_defaults(func=settings)
    check = commands.add_parser(
        "doctor", help="check settings, Monitor's server, customers.xml and App4Sales without running the pipeline "
                       "or sending anything (docs/doctor.md)",
        description="Check a tenant's whole path without running the pipeline and without sending anything to "
                    "App4Sales: the settings, Monitor's file server (host key, TLS, login, folder, customers.xml, "
                    "a parse of it), App4Sales (login, customer index). One line per check; exit status 0 when "
                    "every check passed, 1 when any failed. On the embedded default the sandbox is started for "
                    "the check. See docs/doctor.md.")
    check.add_argument("--tenant", metavar="NAME", help="check only this tenant of MONITOR_TENANTS_FILE "
                                                        "(default: every tenant, or the one of the variables)")
    check.add_argument("--timeout", metavar="SECONDS", type=_seconds, default=10.0,  # doctor.SECONDS
                       help="longest wait of any one connect, read or App4Sales call (default: %(default)g)")
    check.set_defaults(func=doctor)
    commands.add_parser("sandbox", help="the App4Sales sandbox: serve | create-customer … "
                                        "(monitor-pipeline sandbox --help)", add_help=False)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
