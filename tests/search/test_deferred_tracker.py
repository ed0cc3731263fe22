"""The tracker opens on a thread beside the first trial (issue 21): calls made meanwhile are
replayed in order, results wait for it, and what it meets while opening stops the search as if
it had been raised at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import optuna
import pytest

import codenas
from codenas.errors import StorageError
from codenas.search.tracker import DeferredTracker, TrackerStartFailed, register_tracker
from tests.conftest import make_config


class _Recording:
    """A tracker that writes down what it is asked, in order."""

    trial_attrs = ("run",)

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.down = False

    def trial_started(self, trial: Any, spec: Any, retry_of: Any) -> None:
        self.log.append(f"trial_started {trial.number} on {threading.current_thread().name}")

    def set_parent_status(self, status: str) -> None:
        self.log.append(f"set_parent_status {status}")

    def log_metrics(self, trial: Any, metrics: dict[str, float]) -> None:
        self.log.append(f"log_metrics {trial.number} on {threading.current_thread().name}")

    def reconcile(self) -> int:
        self.log.append("reconcile")
        return 0


def test_calls_made_while_it_opens_are_replayed_in_order_and_results_wait_for_it() -> None:
    log: list[str] = []
    release = threading.Event()

    def open_tracker() -> Any:
        assert release.wait(10)
        return _Recording(log)

    study = optuna.create_study()
    tracker = DeferredTracker(open_tracker, _Recording.trial_attrs)
    assert tracker.trial_attrs == ("run",) and not tracker.down
    tracker.set_parent_status("RUNNING")
    tracker.start()
    first = study.ask()
    tracker.trial_started(first, None, None)  # returns at once: the tracker is not open yet
    assert log == []
    release.set()
    tracker.log_metrics(first, {"a": 1.0})  # waits for it, and for the replayed calls
    second = study.ask()
    tracker.trial_started(second, None, None)  # open now: straight through, on this thread
    assert tracker.reconcile() == 0
    main_thread = threading.current_thread().name
    assert log == [
        "set_parent_status RUNNING",
        "trial_started 0 on codenas-open-tracker",
        f"log_metrics 0 on {main_thread}",
        f"trial_started 1 on {main_thread}",
        "reconcile",
    ]


def test_an_error_while_opening_is_raised_where_the_search_next_waits() -> None:
    def open_tracker() -> Any:
        raise StorageError("cannot use MLflow tracking URI 'x': refused")

    tracker = DeferredTracker(open_tracker, ())
    study = optuna.create_study()
    tracker.trial_started(study.ask(), None, None)  # never started explicitly: wait() starts it
    with pytest.raises(TrackerStartFailed) as info:
        tracker.reconcile()
    assert isinstance(info.value.error, StorageError)
    assert tracker.down  # the end-of-search steps are then skipped


class _Refusing:
    """A tracker whose backend refuses it, found only while it opens."""

    trial_attrs = ("run",)

    def __init__(self, config: Any, study: Any, *, created: bool) -> None:
        raise StorageError("cannot use tracking URI 'x': refused")


register_tracker("refusing-for-tests")(_Refusing)


def test_a_tracker_that_fails_to_open_stops_the_search_after_recording_the_trial(
    tmp_path: Path,
) -> None:
    # The tracker now opens beside the first trial; what it meets there must still stop the
    # search with its own error (one line and exit 2 from the command), the trial that was
    # running recorded as failed with the reason, and no second trial started.
    config = make_config(tmp_path)
    with pytest.raises(StorageError, match="refused"):
        codenas.search.run(config, tracker_name="refusing-for-tests")
    study = optuna.load_study(study_name="tiny", storage=config.study.storage)
    assert [t.state.name for t in study.trials] == ["FAIL"]
    assert study.trials[0].user_attrs["fail_reason"] == (
        "StorageError: cannot use tracking URI 'x': refused"
    )
