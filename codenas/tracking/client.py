"""The MLflow client codenas uses: bounded retries with warnings, idempotent run creation,
the experiment and artifact location of a study."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codenas.errors import StorageError, TrackingUnavailable, first_line
from codenas.urls import mask_url

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


_log = logging.getLogger(__name__)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:6000]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a local SQLite store: ``mlartifacts/`` beside the database file (absolute URI).

    MLflow's own default (``./mlruns``) would be created in whatever directory the search runs
    in, and an ``./mlruns`` folder silently switches MLflow's default store, so codenas keeps
    the artifacts next to the database instead.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    return (db.resolve().parent / "mlartifacts").as_uri()


_CAUSES = (
    ("Connection refused", "connection refused"),
    ("Name or service not known", "unknown host"),
    ("timed out", "timed out"),
    ("Connection reset", "connection reset"),
    ("Connection aborted", "connection aborted"),
    ("RemoteDisconnected", "connection closed by the server"),
    ("database is locked", "database is locked"),
)


def _reason(err: BaseException) -> str:
    """A short cause for one-line messages (MLflow's own messages nest whole tracebacks)."""
    text = str(err).strip()
    for needle, cause in _CAUSES:
        if needle in text:
            return cause
    return first_line(err, 200)


# Error codes of MLflow's REST API that mean "try again later", not "your request is wrong".
_TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def _transient(err: BaseException) -> bool:
    from mlflow.exceptions import MlflowException

    if isinstance(err, MlflowException):
        return err.error_code in _TRANSIENT_CODES
    return isinstance(err, (OSError, ConnectionError, TimeoutError)) or type(
        err
    ).__module__.startswith(("requests", "urllib3", "sqlalchemy"))


def _warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"codenas: warning: {message}", file=sys.stderr)


def _own_retry_policy() -> None:
    """codenas owns the retry policy: one quick attempt per request inside MLflow (whose own
    default retries a dead server for minutes, silently), bounded back-off with warnings
    outside it. Users may still set these variables themselves."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


class RetryingClient:
    """An ``MlflowClient`` whose calls are retried on transient errors.

    Each call is retried (tenacity) with exponential back-off (1 s, 2 s, 4 s ... at most 30 s
    apart), a warning printed before each wait, until it has failed for ``retry_for`` seconds;
    then it raises :class:`TrackingUnavailable`. Errors that are not transient (a bad request)
    raise at once.
    """

    def __init__(
        self, client: MlflowClient, uri: str, retry_for: float, warn: Callable[[str], None] = _warn
    ) -> None:
        _own_retry_policy()
        self._client = client
        self._uri = uri
        self._retry_for = retry_for
        self._warn = warn

    @property
    def raw(self) -> MlflowClient:
        """The wrapped client, whose calls are not retried."""
        return self._client

    def retry(
        self,
        name: str,
        fn: Callable[[], Any],
        recover: Callable[[], Any] | None = None,
    ) -> Any:
        """Call ``fn`` until it succeeds or ``retry_for`` seconds have passed.

        ``recover``, for calls that are not idempotent (creating a run), is asked before each
        new attempt whether the failed one took effect after all (the request arrived, its
        answer was lost); a non-``None`` answer is returned instead of trying again.
        """
        import tenacity

        def announce(state: tenacity.RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            self._warn(
                f"MLflow {mask_url(self._uri)} unreachable ({_reason(err)}); retrying "
                f"{name} in {delay:.0f} s ({state.seconds_since_start:.0f} of "
                f"{self._retry_for:g} s)"
            )

        def give_up(state: tenacity.RetryCallState) -> Any:
            err = state.outcome.exception() if state.outcome else None
            raise TrackingUnavailable(
                f"MLflow tracking URI {mask_url(self._uri)!r} unreachable for "
                f"{state.seconds_since_start:.0f} s ({_reason(err)}); stopped after "
                f"tracking.retry_for={self._retry_for:g} s"
            ) from None

        # Back-off 1 s, 2 s, 4 s ... at most 30 s apart, never sleeping past retry_for.
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_transient),
            wait=tenacity.wait_exponential(multiplier=1, min=1, max=30),
            stop=tenacity.stop_before_delay(self._retry_for),
            before_sleep=announce,
            retry_error_callback=give_up,
        )
        for attempt in retrying:
            with attempt:
                if recover is not None and attempt.retry_state.attempt_number > 1:
                    done = self._recovered(name, recover)
                    if done is not None:
                        return done
                return fn()
        return None  # not reached: the last attempt returns, raises, or gives up

    @staticmethod
    def _recovered(name: str, recover: Callable[[], Any]) -> Any:
        """What ``recover`` says a failed attempt did after all, or ``None`` (also when the
        check itself fails: the next attempt is made all the same)."""
        try:
            return recover()
        except Exception as check:
            _log.warning(
                "MLflow: could not check whether %s took effect (%s); trying again",
                name,
                _reason(check),
            )
            return None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.retry(name, lambda: attr(*args, **kwargs))

        return call


def make_client(tracking_uri: str, retry_for: float | None = None) -> Any:
    """An ``MlflowClient`` on ``tracking_uri``, checked to answer (``StorageError`` if not).

    With ``retry_for``, the returned client retries transient errors (:class:`RetryingClient`).
    """
    _own_retry_policy()
    from mlflow.tracking import MlflowClient

    from codenas.search import _sqlite
    from codenas.tracking import fresh_db

    _quiet_mlflow()  # after the import: importing mlflow configures its loggers
    broken = _sqlite.not_a_database(tracking_uri)
    if broken is not None:  # refused now, not after MLflow's two minutes of retries
        raise StorageError(f"cannot use MLflow tracking URI {mask_url(tracking_uri)!r}: {broken}")
    fresh_db.seed(tracking_uri)  # a new local file without MLflow's ~0.8 s of migrations
    _sqlite.tune(tracking_uri)

    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)
    except Exception as err:  # mlflow raises many types for an unreachable backend
        raise StorageError(
            f"cannot use MLflow tracking URI {mask_url(tracking_uri)!r}: {_reason(err)}"
        ) from None
    if retry_for is None:
        return client
    return RetryingClient(client, tracking_uri, retry_for)


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, created (race-safely) if missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise StorageError(
                f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) "
                "or set tracking.experiment to another name"
            )
        return experiment.experiment_id
    try:
        return client.create_experiment(
            name,
            artifact_location=default_artifact_location(tracking_uri),
            tags={"mlflow.experimentKind": "custom_model_development", "codenas": "true"},
        )
    except Exception:  # another worker created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def quote(value: str) -> str:
    """``value`` as a string literal of an MLflow filter string.

    MLflow's filter syntax has no escape inside a quoted value: a value with a single quote is
    written in double quotes, any other in single quotes. A value holding both cannot be
    written (``study.name`` refuses such names when the config is loaded).

    Raises:
        ValueError: ``value`` holds both quote characters.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"{value!r} holds both ' and \", which no MLflow filter string can match")


def search_all_runs(
    client: Any,
    experiment_ids: list[str],
    filter_string: str = "",
    *,
    page_size: int = 1000,
    order_by: list[str] | None = None,
) -> Iterator[Any]:
    """Every run matching ``filter_string``, following MLflow's page tokens.

    ``search_runs`` returns at most ``max_results`` runs (1,000 by default) per call; a study
    with more trials than that would silently lose the rest.

    Args:
        page_size: runs fetched per request (MLflow caps it at 50,000).
    """
    token = None
    while True:
        page = client.search_runs(
            experiment_ids,
            filter_string=filter_string,
            max_results=page_size,
            order_by=order_by,
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def create_run_once(client: Any, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> str:
    """Create a run, exactly once even if the answer to the request is lost.

    The run carries a random ``codenas.request_id`` tag; before a retry, the experiment is
    searched for it, so a request that reached the server is not repeated.
    """
    import uuid

    key = uuid.uuid4().hex
    tags = {**tags, "codenas.request_id": key}

    raw = client.raw if isinstance(client, RetryingClient) else client

    def create() -> str:  # one attempt: the retries, with ``find``, happen around it
        return raw.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id

    def find() -> str | None:
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`codenas.request_id` = {quote(key)}",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    if isinstance(client, RetryingClient):
        return str(client.retry("create_run", create, recover=find))
    return create()
