"""The errors codenas raises on bad input.

Every error a user can cause derives from :class:`CodenasError`; the command line prints its
message as one line on stderr and exits with status 2. Messages say where (file and key path),
the rule, the value, and, where there is one, the fix.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable


class CodenasError(Exception):
    """Base class of every error caused by user input (config, data, names, storages)."""


class ConfigError(CodenasError, ValueError):
    """A config file or override is invalid: unknown key, wrong type, impossible range."""


class DataError(CodenasError, ValueError):
    """A dataset cannot be loaded or fails its checks (shape, NaN, labels, size)."""


class StorageError(CodenasError, RuntimeError):
    """An Optuna storage or MLflow tracking backend cannot be reached or used."""


class TrackingUnavailable(StorageError):
    """The MLflow tracking backend stayed unreachable for longer than ``tracking.retry_for``."""


class StudyMismatchError(ConfigError):
    """A config does not match the config the stored study was created with."""


class UnknownNameError(CodenasError, KeyError):
    """A name (metric, space, dataset, sampler, ...) that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def first_line(err: BaseException, limit: int | None = 300, *, with_type: bool = False) -> str:
    """The first line of ``err``'s message, at most ``limit`` characters, for one-line messages
    and warnings (library messages often nest whole tracebacks); with its type's name in front
    when ``with_type``, and the type's name alone for an empty message."""
    text = str(err).strip()
    if not text:
        return type(err).__name__
    line = text.splitlines()[0]
    if limit is not None:
        line = line[:limit]
    return f"{type(err).__name__}: {line}" if with_type else line


def unknown_name_message(kind: str, name: str, available: Iterable[str], where: str = "") -> str:
    """Format "unknown <kind> 'x'[ in <where>]. Did you mean 'y'? Available: a, b, c"."""
    names = sorted(available)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    place = f" in {where}" if where else ""
    return f"unknown {kind} {name!r}{place}.{hint} Available: {', '.join(names)}"


class _WarningLines(logging.Handler):
    """``codenas: warning: <message>`` on stderr, through ``tqdm.write`` (bars stay whole)."""

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        from tqdm import tqdm

        try:
            tqdm.write(f"codenas: warning: {self.format(record)}", file=sys.stderr)
        except Exception:
            self.handleError(record)


def show_warnings() -> None:
    """Print what codenas logs at WARNING or above as ``codenas: warning: ...`` lines on stderr.

    The modules log through ``logging`` (loggers under ``codenas``): a bookkeeping step that
    failed without failing the search, a worker that had to be killed. The command line, and
    each worker process it starts, call this once; a library user configures ``logging``
    instead. Calling it again adds nothing.
    """
    logger = logging.getLogger("codenas")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        logger.addHandler(_WarningLines(logging.WARNING))
