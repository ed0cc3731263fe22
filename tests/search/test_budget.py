"""The time budget (``study.timeout``, ``--timeout``) and what each trial costs."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

import codenas
from codenas.cli import main
from codenas.config.models import parse_duration
from codenas.errors import ConfigError
from codenas.search.budget import Budget, command_clock, deadline_for
from codenas.search.study import study_totals
from tests.conftest import make_config, tiny_overrides


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("20m", 1200.0), ("2h", 7200.0), (45, 45.0), ("1.5h", 5400.0)],
)
def test_durations_are_read_in_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["90x", "-5", "0", "2 days", "", True, "nan"])
def test_bad_durations_are_refused_naming_the_key(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigError, match=r"study\.timeout: .*(duration|positive)") as info:
        make_config(
            tmp_path, [f"study.timeout={bad!r}" if isinstance(bad, str) else f"study.timeout={bad}"]
        )
    assert "\n" not in str(info.value)


def test_a_timeout_without_trials_leaves_the_count_unbounded(tmp_path: Path) -> None:
    bare = codenas.Config.from_dict({"study": {"timeout": "20m"}})
    assert (bare.study.timeout, bare.study.trials) == (1200.0, None)
    both = codenas.Config.from_dict({"study": {"timeout": "20m", "trials": 7}})
    assert (both.study.timeout, both.study.trials) == (1200.0, 7)
    assert codenas.Config.from_dict(bare.to_dict()) == bare
    with pytest.raises(ConfigError, match="trials: null needs a timeout"):
        codenas.Config.from_dict({"study": {"trials": None}})


def test_the_deadline_counts_from_the_command_start() -> None:
    assert deadline_for(None) is None
    with command_clock(1000.0):
        assert deadline_for(60.0) == 1060.0
    assert abs(deadline_for(60.0) - (time.time() + 60)) < 1  # type: ignore[operator]
    budget = Budget(None, deadline=time.time() - 1)
    assert budget.unlimited and not budget.take()
    assert Budget(2).take() and not Budget(0).take()


def test_bad_timeout_on_the_command_line_is_one_line_and_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = [a for o in tiny_overrides(workdir) for a in ("--set", o)]
    code = main(["search", "--no-progress", "--timeout", "soon", *overrides])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("codenas: error: --timeout: expected a duration") and err.count("\n") == 1
    assert not (workdir / "optuna.db").exists()


def _check_timed(study: optuna.Study, started: float, timeout: float) -> None:
    trials = study.get_trials(deepcopy=False)
    assert trials, "the search ran a trial in its time"
    deadline = started + timeout
    longest = max(t.user_attrs["wall_seconds"] for t in trials)
    for t in trials:
        assert t.state.is_finished(), t.state
        # No trial starts after the deadline (Optuna's start time is set just after ask).
        assert t.datetime_start.timestamp() <= deadline + 0.5
        assert t.user_attrs["cpu_seconds"] > 0
        assert 0 < t.user_attrs["wall_seconds"] <= time.time() - started
    # The search ends by the deadline plus the trial each worker was running then.
    last_end = max(t.datetime_complete.timestamp() for t in trials)
    assert last_end <= deadline + longest + 2.0
    # ... and not before it: trials are unbounded, so it went on starting them until then
    # (however many fit, which depends on the machine's load).
    assert last_end >= deadline - 1.0
    totals = study_totals(study)
    assert totals["cpu_seconds"] == pytest.approx(sum(t.user_attrs["cpu_seconds"] for t in trials))
    assert totals["wall_seconds"] == pytest.approx(
        sum(t.user_attrs["wall_seconds"] for t in trials)
    )


@pytest.mark.slow
def test_a_timed_search_stops_starting_trials_at_its_deadline(tmp_path: Path) -> None:
    from codenas.search.study import prepare
    from tests.search.test_study import child_runs

    config = make_config(tmp_path, ["study.timeout=6s", "study.trials=null"])
    prepared = prepare(config)  # its imports and data are not what is timed here
    started = time.time()
    with command_clock(started):
        study = codenas.search.run(config, prepared=prepared)
    _check_timed(study, started, 6.0)
    client, parent, children = child_runs(config)
    for run in children:  # every trial's cost reaches MLflow, the totals the study's run
        assert {"cpu_seconds", "wall_seconds"} <= set(run.data.metrics)
    assert {"cpu_seconds", "wall_seconds"} <= set(client.get_run(parent).data.metrics)


@pytest.mark.slow
def test_two_workers_share_one_deadline(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overrides = [a for o in tiny_overrides(workdir) for a in ("--set", o)]
    started = time.time()
    code = main(["search", "--no-progress", "--workers", "2", "--timeout", "20s", *overrides])
    out, err = capsys.readouterr()
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{workdir / 'optuna.db'}")
    _check_timed(study, started, 20.0)
    # (Whether the second worker got trials before the deadline depends on how fast it started
    # on a loaded machine; one that starts after it runs none: tested below.)
    assert "Pareto front of study 'tiny'" in out


def test_a_worker_that_starts_after_the_deadline_runs_nothing(tmp_path: Path) -> None:
    import multiprocessing as mp

    from codenas.search.parallel import _worker_main

    config = make_config(tmp_path, ["study.timeout=1s"])
    ctx = mp.get_context("spawn")
    tickets = ctx.Value("i", 5)
    proc = ctx.Process(
        target=_worker_main,
        args=(config.to_dict(), "test", tickets, 1, 2, time.time() - 1.0),
    )
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    assert tickets.value == 5, "no trial ticket was taken"
    assert not (tmp_path / "optuna.db").exists(), "nor a storage opened"
