"""Command line: ``python -m monitor_pipeline.sandbox serve|create-customer …``."""

from __future__ import annotations

import argparse
import json
import sys

import requests


def _user(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None, prog: str = "python -m monitor_pipeline.sandbox") -> int:
    from monitor_pipeline.lib import defaults

    default_db = defaults.sandbox_db()
    parser = argparse.ArgumentParser(prog=prog, description="App4Sales sandbox server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the sandbox server in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--db", default=str(default_db), help=f"SQLite file, created if missing (default {default_db})")
    serve.add_argument("--user", type=_user, action="append",
                       help=f"USER:PASSWORD (repeatable; default {defaults.SANDBOX_USERNAME}:{defaults.SANDBOX_PASSWORD})")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="every API call waits this long (a WAN)")
    serve.add_argument("--max-in-flight", type=_positive, help="answer 429 beyond this many API calls in flight")
    serve.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of those 429s, seconds")
    create = commands.add_parser("create-customer", help="play a sales rep creating a customer in the app")
    create.add_argument("--url", required=True, help="API base URL, e.g. http://127.0.0.1:8765/demo/api/app4sales/")
    create.add_argument("--user", default="demo")
    create.add_argument("--password", default="demo")
    create.add_argument("--name", required=True)
    create.add_argument("--xml-file", help="use this file's XML instead of a generated one")
    create.add_argument("--fail-code", action="store_true", help="make the code lookup for this customer answer 409")
    args = parser.parse_args(argv)

    if args.command == "serve":
        from monitor_pipeline.sandbox.server import serve as run

        users = dict(args.user or [(defaults.SANDBOX_USERNAME, defaults.SANDBOX_PASSWORD)])
        login = (f"{defaults.SANDBOX_USERNAME} / {defaults.SANDBOX_PASSWORD}" if not args.user
                 else "the --user you gave")  # a password of yours is never printed
        print(f"App4Sales sandbox: http://{args.host}:{args.port}/<administration>/api/app4sales/ "
              f"(e.g. http://{args.host}:{args.port}/demo/api/app4sales/; page: http://{args.host}:{args.port}/demo/, "
              f"login {login}; data in {args.db})", flush=True)
        if args.latency_ms or args.max_in_flight:
            print(f"playing a remote App4Sales: {args.latency_ms:g} ms per call"
                  + (f", 429 beyond {args.max_in_flight} calls in flight" if args.max_in_flight else ""), flush=True)
        run(args.db, args.host, args.port, users, latency_ms=args.latency_ms, max_in_flight=args.max_in_flight,
            retry_after=args.retry_after)
        return 0

    body = {"CustomerName": args.name, "FailCodeGeneration": args.fail_code}
    if args.xml_file:
        with open(args.xml_file, encoding="utf-8") as f:
            body["Xml"] = f.read()
    url = args.url.rstrip("/") + "/sandbox/newcustomers"
    try:
        response = requests.post(url, json=body, auth=(args.user, args.password), timeout=(5, 30))
    except requests.RequestException as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"error: HTTP {response.status_code}: {response.text[:500]}", file=sys.stderr)
        return 1
    created = response.json()
    print(json.dumps(created))
    print(f"guid={created['CustomerGuid']} code={created['CustomerCode']} sequence={created['Sequence']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
