"""The ``codenas`` command line: the only place that parses argv, prints and exits.

One module per command (``codenas/cli/<command>.py``: ``add_parser(sub)`` and ``run(args)``);
each is a thin layer over a documented Python call (:mod:`codenas.workflows`,
:mod:`codenas.decisions`, :mod:`codenas.search`). Bad input is one line on stderr and exit
status 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from codenas.cli import (
    catalog,
    distil,
    edit,
    erase,
    front,
    pick,
    report,
    rightsize,
    search,
    train,
    ui,
    worker,
)
from codenas.cli._common import err
from codenas.errors import CodenasError, show_warnings
from codenas.search import hangup

EPILOG = """\
examples:
  codenas search                          # the default search: MLPs on digits, 30 trials
  codenas search configs/shapes-cnn.yaml --trials 50
  codenas search --set train.epochs=5 --set space.width.max=512 --study wider
  codenas front --format json             # the Pareto front of the study here
  codenas front factors-mlp               # of another config's study (or --study NAME)
  codenas pick --require 'val_accuracy>=0.95' --out spec.yaml
  codenas rightsize --trial 7 --run       # a smaller spec from the trial's neural code
  codenas train spec.yaml --data wine --epochs 50
  codenas search --set data.name=wine --study wine --seed-from digits-mlp --top 3
  codenas report RUN_ID                   # figures of a network's neural code
  codenas ui                              # MLflow UI on ./mlflow.db

Studies live in ./optuna.db and runs in ./mlflow.db unless --storage / --tracking-uri say
otherwise; running the same command again continues the same study. front, pick and
rightsize take the study as search takes a config: a config name or file, or a study name.
"""

# The commands, in the order `codenas --help` lists them.
COMMANDS = (search, worker, front, pick, rightsize, train, distil, erase, edit, report, ui)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codenas",
        description="Neural-architecture search guided by the neural code: Optuna samples "
        "architectures, Lightning trains each briefly, coding metrics on the hidden "
        "activations score them with accuracy and size, MLflow tracks every trial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from codenas import __version__

    parser.add_argument("--version", action="version", version=f"codenas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    catalog.add_parsers(sub)
    return parser


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# The commands that import torch, Lightning, Optuna and MLflow before their first output
# (about 5 s on two cores).
_HEAVY = {"search", "worker", "rightsize", "train", "distil", "erase", "report"}


def _say_loading(args: argparse.Namespace) -> None:
    """One line on a terminal while a heavy command imports, so nobody stares at nothing."""
    if args.command not in _HEAVY or getattr(args, "no_progress", False):
        return
    with contextlib.suppress(OSError, ValueError):
        if sys.stderr.isatty():
            print("codenas: loading torch, Lightning, Optuna and MLflow...", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``codenas`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM (a scheduler stopping the job) ends a search like Ctrl-C: the running trial is
    # recorded as failed in both stores and the process exits 130.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # SIGHUP (a closed terminal, `kill -HUP`) does whatever SIGTERM does at that moment.
    hangup.sighup_as_sigterm()
    show_warnings()
    _say_loading(args)
    try:
        return int(args.func(args) or 0)
    except CodenasError as error:
        err(str(error))
        return 2
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # the terminal that was closed (SIGHUP)
            print(
                f"\ncodenas: interrupted{_AFTER_INTERRUPT.get(args.command, '')}", file=sys.stderr
            )
        return 130
    except BrokenPipeError:  # `codenas front | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


# What an interrupted command left, where it is more than its output.
_AFTER_INTERRUPT = {
    command: "; a trial that was running is recorded as failed (nothing else is lost). Run the "
    "same command again to continue the study."
    for command in ("search", "worker", "rightsize")
}


def console_main() -> None:
    """The ``codenas`` console script: :func:`main`, then a quick exit with its status."""
    status = main()
    # Everything is written; what is left is the interpreter's teardown, whose garbage
    # collections walk the million objects torch, Lightning and MLflow imported: 1.5 s of a
    # 7 s search on two cores. Freezing them skips those walks; the teardown itself (atexit
    # handlers, flushes, destructors) runs as usual. Not in main(): a caller's process goes on.
    gc.disable()
    gc.freeze()
    sys.exit(status)
