"""``codenas ui``: start the MLflow UI on the tracking store (localhost only)."""

from __future__ import annotations

import argparse
import sys

from codenas.cli._common import DEFAULT_TRACKING, existing_sqlite
from codenas.urls import is_server


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ui",
        help="start the MLflow UI on the tracking store (localhost only)",
        description="Start `mlflow server` on the tracking URI, bound to 127.0.0.1.",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=DEFAULT_TRACKING,
        help=f"MLflow tracking URI (default: {DEFAULT_TRACKING})",
    )
    p.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    uri = args.tracking_uri
    if is_server(uri):
        print(f"{uri} is already a tracking server: open it in a browser")
        return 0
    existing_sqlite(uri, "MLflow database", "--tracking-uri")
    mlflow = shutil.which("mlflow")
    cmd = [mlflow] if mlflow else [sys.executable, "-m", "mlflow"]
    # One worker process: a local UI for one user, and it starts in half the time.
    cmd += ["server", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)]
    cmd += ["--workers", "1"]
    from codenas.tracking import front_links

    base = f"http://127.0.0.1:{args.port}"
    print(
        f"MLflow UI on {base} (Ctrl-C to stop); the Pareto front of each codenas study:",
        file=sys.stderr,
    )
    for experiment, study, url in front_links(uri, base):
        print(f"  {study or experiment}: {url}", file=sys.stderr)
    sys.stderr.flush()
    return subprocess.call(cmd)
