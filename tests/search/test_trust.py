"""Trust (issue 13): the test split never steers selection, no private Optuna APIs, race-free
queues, failures that say so, true parent-run states, honest retries, side-effect-free seeding
and MLflow filters that survive any study name.

Everything runs on real SQLite files (Optuna and MLflow); the multi-process cases are in
``test_trust_workers.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

import codenas
from codenas.cli import main
from codenas.decisions.picking import Requirement, pick
from codenas.errors import ConfigError
from codenas.search.tracker import register_tracker
from codenas.tracking import MlflowTracker
from tests.conftest import make_config, tiny_overrides
from tests.decisions.test_pick import front_study, sqlite_study

# ----------------------------------------------------------------------------- the test split


@pytest.mark.parametrize("metric", ["test_accuracy", "test_loss", "test_r2"])
def test_a_test_metric_is_refused_as_a_constraint(tmp_path: Path, metric: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"constraints": [f"{metric} >= 0.5"]}))
    with pytest.raises(ConfigError, match=r"constraints\[0\]\.metric: .*test split") as info:
        codenas.load_config(path)
    assert "\n" not in str(info.value)
    assert "never used for selection" in str(info.value)


def test_cli_search_with_a_test_constraint_exits_2_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["search", "--no-progress"]
    for item in [*tiny_overrides(tmp_path), "constraints=[test_accuracy >= 0.5]"]:
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test split" in err
    assert not (tmp_path / "optuna.db").exists()


def test_pick_refuses_a_test_requirement_and_a_test_preference() -> None:
    study = front_study(
        [(0.99, 10000), (0.97, 2000)],
        metrics=[{"test_accuracy": 0.5}, {"test_accuracy": 0.9}],
    )
    with pytest.raises(ConfigError, match="test split"):
        Requirement.parse("test_accuracy>=0.8")
    with pytest.raises(ConfigError, match="test split"):
        pick(study, require=["test_accuracy>=0.8"])
    with pytest.raises(ConfigError, match="test split"):
        pick(study, prefer="test_accuracy")
    assert pick(study, require=["val_accuracy>=0.98"]).trial == 0  # the validation metric works


def test_cli_pick_with_a_test_requirement_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = sqlite_study(tmp_path, points=[(0.99, 10000)])
    assert main(["pick", "--storage", storage, "--require", "test_accuracy>=0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test split" in err and "--require" in err


# ----------------------------------------------------------------------------- MLflow filters


def test_a_study_name_with_a_quote_is_tracked_and_found_again(tmp_path: Path) -> None:
    from codenas.tracking import MlflowTracker
    from codenas.tracking.runs import mark_picked

    config = make_config(tmp_path, ["study.name=it's", "study.trials=2"])
    study = codenas.search.run(config)
    again = MlflowTracker(config, study, created=False)  # finds the parent run by its name
    assert again.parent_run_id == study.user_attrs["codenas.mlflow_parent_run_id"]
    client = MlflowClient(config.tracking.uri)
    experiment = client.get_experiment_by_name(config.experiment)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("codenas.role") == "study"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("codenas.trial_number") is not None]
    assert sorted(r.data.tags["codenas.trial_number"] for r in children) == ["0", "1"]
    assert all(r.data.tags["codenas.study"] == "it's" for r in children)
    assert all(r.info.status == "FINISHED" for r in children)
    first, second = (t.user_attrs["mlflow_run_id"] for t in study.trials)
    mark_picked(config.tracking.uri, "it's", first, "test")
    assert mark_picked(config.tracking.uri, "it's", second, "test") == [first]


def test_a_study_name_no_filter_can_quote_is_refused_naming_study_name() -> None:
    with pytest.raises(ConfigError, match=r"study\.name: .*both ' and \"") as info:
        codenas.load_config(None, ['study.name=it\'s "x"'])
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow database for the tests that need only runs (its schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'm.db'}"


def test_search_all_runs_pages_through_every_result(mlflow_uri: str) -> None:
    from codenas.tracking.client import search_all_runs

    client = MlflowClient(mlflow_uri)
    experiment = client.create_experiment("paging")
    made = {client.create_run(experiment, tags={"k": "v"}).info.run_id for _ in range(5)}
    client.create_run(experiment, tags={"k": "other"})
    found = list(search_all_runs(client, [experiment], "tags.k = 'v'", page_size=2))
    assert {r.info.run_id for r in found} == made
    assert len(found) == 5


# ----------------------------------------------------------------------------- private APIs

PRIVATE = (
    "._trial_id",
    "._storage",
    "._cached_frozen_trial",
    "study._multi_objective",
    "study._constrained_optimization",
    "system_attrs",
    '"failed_trial"',
    '"fixed_params"',
)


def test_no_private_optuna_access_outside_its_one_module() -> None:
    root = Path(codenas.__file__).parent
    found = [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "_optuna_private.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(p in line for p in PRIVATE)
    ]
    assert found == []


def test_optunas_private_keys_still_mean_what_codenas_reads(tmp_path: Path) -> None:
    """Fails loudly when Optuna changes where it keeps a queued trial's parameters."""
    from codenas.search._optuna_private import queued_params

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    study.enqueue_trial({"depth": 2, "width": 16})
    (waiting,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert waiting.params == {}  # why the private key is read at all
    assert queued_params(waiting) == {"depth": 2, "width": 16}


def test_a_sampler_can_still_write_the_live_trials_user_attrs(tmp_path: Path) -> None:
    """Fails loudly when Optuna moves the storage or the trial id."""
    from codenas.search._optuna_private import set_trial_user_attrs

    class Marking(optuna.samplers.RandomSampler):
        def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            set_trial_user_attrs(study, trial, {"codenas.rule": "test"})

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}", sampler=Marking())
    seen = []
    study.optimize(lambda t: seen.append(t.user_attrs) or 0.0, n_trials=1)
    assert seen == [{"codenas.rule": "test"}]
    assert study.trials[0].user_attrs == {"codenas.rule": "test"}


def test_best_trials_is_optunas_front_without_the_copy(tmp_path: Path) -> None:
    """The same front as ``study.best_trials``: constrained (infeasible trials left out),
    unconstrained, ties kept, failed trials ignored."""
    from codenas.search._optuna_private import best_trials

    def numbers(trials: list[optuna.trial.FrozenTrial]) -> list[int]:
        return sorted(t.number for t in trials)

    rng = np.random.default_rng(0)
    for constrained in (False, True):
        study = optuna.create_study(
            storage=f"sqlite:///{tmp_path / f'front{constrained}.db'}",
            directions=["maximize", "minimize"],
        )
        assert best_trials(study) == []
        for i in range(40):
            trial = study.ask()
            if i % 9 == 4:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            if constrained:
                trial.set_constraint("c", float(rng.normal()))
            values = (round(float(rng.random()), 1), round(float(rng.random()), 1))
            study.tell(trial, values)
        study.tell(study.ask(), study.best_trials[0].values)  # a tie on the front
        expected = numbers(study.best_trials)
        assert numbers(best_trials(study)) == expected and len(expected) >= 2


def test_the_callbacks_of_a_trials_end_share_one_read_of_the_study(tmp_path: Path) -> None:
    """``trials_after``: what ``get_trials`` gives right after a trial ended, read once for that
    trial's callbacks and read afresh for the next trial's; the tracker, the progress bar and
    the weight store of a real search then agree with the public front."""
    from codenas.search._optuna_private import best_trials, trials_after

    storage = f"sqlite:///{tmp_path / 'after.db'}"
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    reads: list[list[optuna.trial.FrozenTrial]] = []

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        first, second = trials_after(study, trial), trials_after(study, trial)
        assert first is second  # one read for the callbacks of one end
        assert [t.number for t in first] == [t.number for t in study.get_trials()]
        assert first[trial.number].state.is_finished()  # read after the trial was stored
        assert sorted(t.number for t in best_trials(study, first)) == sorted(
            t.number for t in study.best_trials
        )
        reads.append(first)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        return trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)

    study.optimize(objective, n_trials=4, callbacks=[callback, callback])
    assert len(reads) == 8 and reads[0] is reads[1] and reads[1] is not reads[2]
    assert [len(r) for r in reads[::2]] == [1, 2, 3, 4]


def test_stored_trial_gives_the_retry_history_without_a_read(tmp_path: Path) -> None:
    from codenas.search._optuna_private import stored_trial
    from codenas.search.storage import retried_trial_number

    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'retry.db'}",
        heartbeat_interval=1,
        grace_period=1,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
    )
    study = optuna.create_study(storage=storage)
    with pytest.warns(UserWarning):
        stale = study.ask()  # RUNNING with one heartbeat, then none: stale after the grace
    storage.record_heartbeat(stale._trial_id)
    time.sleep(2.5)
    seen = []

    def objective(trial: optuna.Trial) -> float:
        public = next(
            t
            for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            if t.number == trial.number
        )
        seen.append((retried_trial_number(stored_trial(trial)), retried_trial_number(public)))
        return 0.0

    study.optimize(objective, n_trials=2)  # the first trial run is the stale one's retry
    assert seen == [(0, 0), (None, None)]


# ----------------------------------------------------------------------------- queues


def test_concurrent_enqueues_each_get_their_own_trial_number(tmp_path: Path) -> None:
    from codenas.decisions.seeding import Seed, enqueue_seeds

    url = f"sqlite:///{tmp_path / 'q.db'}"
    optuna.create_study(storage=url, study_name="q")
    got: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(k: int) -> None:
        try:
            from codenas.search.storage import make_storage

            study = optuna.load_study(study_name="q", storage=make_storage(url))
            seeds = [
                Seed(trial=i, params={"depth": k + 1, "width": 4 + i}, user_attrs={})
                for i in range(12)
            ]
            start.wait()
            got[k] = [n for seed in seeds for n in enqueue_seeds(study, [seed])]
        except BaseException as err:  # reported below: a thread's failure must fail the test
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    from codenas.search._optuna_private import queued_params

    trials = optuna.load_study(study_name="q", storage=url).get_trials(deepcopy=False)
    for k, numbers in got.items():
        assert len(set(numbers)) == 12
        assert [queued_params(trials[n]) for n in numbers] == [
            {"depth": k + 1, "width": 4 + i} for i in range(12)
        ]


# ----------------------------------------------------------------------------- retries


def test_a_retry_keeps_the_queued_widths_not_the_killed_runs_id(tmp_path: Path) -> None:
    from codenas.search.storage import StaleTrialHandler, retried_trial_number

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}")
    killed = optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL,
        params={"width": 8},
        distributions={"width": optuna.distributions.IntDistribution(1, 64)},
        user_attrs={
            "widths": [8, 4],
            "codenas.seeded_from": 3,
            "mlflow_run_id": "run-of-the-killed-trial",
            "worker": "host:1",
            "spec": {"widths": [8, 4]},
            "metrics": {"val_accuracy": 0.5},
        },
    )
    study.add_trial(killed)
    handler = StaleTrialHandler(retries=1)
    handler.drop_attrs.add("mlflow_run_id")  # what the MLflow tracker declares
    handler(study, study.trials[0])
    retry = study.trials[1]
    assert retry.state.name == "WAITING"
    assert retry.params == {"width": 8}
    assert retry.user_attrs == {"widths": [8, 4], "codenas.seeded_from": 3}
    assert retried_trial_number(retry) == 0
    assert study.trials[0].user_attrs["mlflow_run_id"] == "run-of-the-killed-trial"


@pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="Linux process table")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed")
def test_a_dead_worker_on_this_machine_is_failed_and_re_queued_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    from codenas.search.storage import (
        StaleTrialHandler,
        fail_dead_workers,
        make_storage,
        retried_trial_number,
        worker_id,
    )

    url = f"sqlite:///{tmp_path / 'd.db'}"
    storage = make_storage(
        url, heartbeat_interval=60, grace_period=120, stale_handler=StaleTrialHandler(1)
    )
    study = optuna.create_study(storage=storage)
    here = worker_id().rpartition(":")[0]  # host/machine of this process
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie.kill()  # not reaped: a zombie has ended too
    time.sleep(0.5)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        workers = [
            f"{here}:{ended.pid}",  # dead
            f"{here}:{zombie.pid}",  # dead (zombie)
            f"{here}:{alive.pid}",  # alive: left to its worker
            f"{here.split('/')[0]}/00000000:{ended.pid}",  # another machine (or namespace)
            f"{here.split('/')[0]}:{ended.pid}",  # recorded without a machine id
        ]
        for i, worker in enumerate(workers):
            trial = study.ask({"x": optuna.distributions.IntDistribution(0, 9)})
            trial.set_user_attr("worker", worker)
            assert trial.params["x"] is not None and i == trial.number
        assert fail_dead_workers(study) == 2
        assert fail_dead_workers(study) == 0  # found once: nothing is failed twice
        states = [t.state.name for t in study.trials[:5]]
        assert states == ["FAIL", "FAIL", "RUNNING", "RUNNING", "RUNNING"]
        retries = {retried_trial_number(t): t for t in study.trials[5:]}
        assert set(retries) == {0, 1}  # re-queued by the storage's stale-trial callback
        assert all(t.state.name == "WAITING" for t in retries.values())
        assert retries[0].params == study.trials[0].params
    finally:
        alive.kill()
        alive.wait()
        zombie.wait()


# ----------------------------------------------------------------------------- failures said


class _Broken(RuntimeError):
    pass


class _FlakyTracker(MlflowTracker):
    """The real MLflow tracker whose end-of-search steps named in ``BREAK`` raise."""

    started = False  # its own start-up reconcile works

    def reconcile(self) -> int:
        if "reconcile" in BREAK and self.started:
            raise _Broken("reconcile is broken")
        return super().reconcile()

    def update_front(self, study, best=None, *, final=False):  # type: ignore[no-untyped-def]
        if "update_front" in BREAK and final:
            raise _Broken("update_front is broken")
        return super().update_front(study, best, final=final)

    def finish_study(self, status, totals):  # type: ignore[no-untyped-def]
        if "finish_study" in BREAK:
            raise _Broken("finish_study is broken")
        return super().finish_study(status, totals)


def _flaky_tracker(config, study, *, created):  # type: ignore[no-untyped-def]
    tracker = _FlakyTracker(config, study, created=created)
    tracker.started = True
    return tracker


BREAK: set[str] = set()
register_tracker("flaky-for-tests")(_flaky_tracker)


def _parent(config: codenas.Config):  # type: ignore[no-untyped-def]
    client = MlflowClient(config.tracking.uri)
    experiment = client.get_experiment_by_name(config.experiment)
    (parent,) = client.search_runs(
        [experiment.experiment_id], "tags.`codenas.role` = 'study'", max_results=5
    )
    return client, parent


def test_each_end_of_search_step_runs_and_a_failure_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, ["study.trials=1"])
    BREAK.clear()
    BREAK.update({"reconcile", "update_front"})
    try:
        with caplog.at_level(logging.WARNING, logger="codenas"):
            study = codenas.search.run(config, tracker_name="flaky-for-tests")
    finally:
        BREAK.clear()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("reconcile" in m and "reconcile is broken" in m for m in messages), messages
    assert any("Pareto front" in m and "update_front is broken" in m for m in messages)
    client, parent = _parent(config)
    # The first two steps failed; the third still ran: the parent ended, with its totals.
    assert parent.info.status == "FINISHED" and parent.info.end_time is not None
    assert parent.data.metrics["trials_complete"] == 1
    assert study.trials[0].state.name == "COMPLETE"

    # A failing last step leaves the others done, and says so.
    from codenas.search.study import wrap_up

    BREAK.add("finish_study")
    try:
        flaky = _flaky_tracker(config, study, created=False)
        run_id = study.trials[0].user_attrs["mlflow_run_id"]
        client.update_run(run_id, status="RUNNING")  # a run left open, for reconcile to end
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="codenas"):
            wrap_up(study, flaky, status="FINISHED")
    finally:
        BREAK.clear()
    assert client.get_run(run_id).info.status == "FINISHED"  # reconcile ran
    assert any("finish_study is broken" in r.getMessage() for r in caplog.records)


def test_two_processes_that_both_end_last_write_the_totals_once(tmp_path: Path) -> None:
    """Two workers ending at the same moment can both find no trial running (Optuna's storage
    has no compare-and-set to let one claim the end). Both then end the record: the second must
    add no second copy of the totals. A study continued later adds its new totals."""
    from codenas.search.study import wrap_up

    config = make_config(tmp_path, ["study.trials=2"])
    study = codenas.search.run(config)
    client, parent = _parent(config)
    first = client.get_metric_history(parent.info.run_id, "trials_complete")
    assert [(m.value, m.step) for m in first] == [(2.0, 2)]
    for _ in range(2):  # two more processes, each finding itself the last one
        time.sleep(0.01)  # a later clock must not make a second entry
        wrap_up(study, MlflowTracker(config, study, created=False), status="FINISHED")
    again = client.get_metric_history(parent.info.run_id, "trials_complete")
    assert [(m.value, m.step, m.timestamp) for m in again] == [
        (m.value, m.step, m.timestamp) for m in first
    ]
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"

    codenas.search.run(make_config(tmp_path, ["study.trials=1"]))  # the same study, continued
    grown = client.get_metric_history(parent.info.run_id, "trials_complete")
    assert sorted((m.value, m.step) for m in grown) == [(2.0, 2), (3.0, 3)]


def test_a_failing_stale_trial_hook_is_a_warning_and_the_retry_is_still_queued(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from codenas.search.storage import StaleTrialHandler

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL,
            params={"width": 8},
            distributions={"width": optuna.distributions.IntDistribution(1, 64)},
        )
    )
    ran = []

    def broken(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        raise _Broken("the tracking server is gone")

    handler = StaleTrialHandler(retries=1)
    handler.hooks += [broken, lambda s, t: ran.append(t.number)]
    with caplog.at_level(logging.WARNING, logger="codenas"):
        handler(study, study.trials[0])
    assert [t.state.name for t in study.trials] == ["FAIL", "WAITING"]
    assert ran == [0]  # the hook after the broken one ran
    (record,) = [r for r in caplog.records if "the tracking server is gone" in r.getMessage()]
    assert "trial 0" in record.getMessage() and record.levelno == logging.WARNING


def test_a_run_whose_config_cannot_be_read_is_a_warning(
    tmp_path: Path, mlflow_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    from codenas.tracking.runs import read_run

    uri = mlflow_uri
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    parent = client.create_run(experiment).info.run_id
    child = client.create_run(
        experiment, tags={"mlflow.parentRunId": parent, "codenas.trial_number": "0"}
    ).info.run_id
    with caplog.at_level(logging.WARNING, logger="codenas"):
        record = read_run(uri, child)
    assert record.config is None and record.kind == "trial"
    assert any(
        f"the config.yaml of run {parent} was not read" in r.getMessage() for r in caplog.records
    )


def test_the_cli_prints_logged_warnings_as_one_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from codenas.errors import show_warnings

    show_warnings()
    show_warnings()  # once only
    logging.getLogger("codenas.search.study").warning("step %s failed: %s", "x", "why")
    assert capsys.readouterr().err == "codenas: warning: step x failed: why\n"


def test_the_failing_stale_sweep_of_the_coordinator_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from codenas.search.parallel import _fail_stale

    with caplog.at_level(logging.WARNING, logger="codenas"):
        _fail_stale(None)  # not a study: the sweep fails
    assert any(
        "failing the trials of dead workers failed" in r.getMessage() for r in caplog.records
    )


# ----------------------------------------------------------------------------- parent run


def test_the_parent_run_ends_only_when_no_worker_runs_a_trial(tmp_path: Path) -> None:
    from codenas.search.storage import make_storage

    config = make_config(tmp_path, ["study.trials=1"])
    codenas.search.run(config, n_trials=0)  # creates the study and its parent run
    # Another worker (another process or machine) is running a trial of the same study.
    other = optuna.load_study(
        study_name=config.study.name, storage=make_storage(config.study.storage)
    )
    held = other.ask()
    codenas.search.run(config)
    _, parent = _parent(config)
    assert parent.info.status == "RUNNING", "a worker still runs: the study is not finished"
    other.tell(held, state=optuna.trial.TrialState.FAIL)
    before = int(time.time() * 1000)
    study = codenas.search.run(config)
    _, parent = _parent(config)
    assert parent.info.status == "FINISHED"
    assert parent.info.end_time is not None and parent.info.end_time >= before
    metrics = parent.data.metrics
    assert metrics["trials_complete"] == 2
    assert metrics["trials_failed"] == 1
    assert metrics["trials_pruned"] == 0
    assert metrics["front_size"] == len(study.best_trials)
    best = max(t.values[0] for t in study.best_trials)
    assert metrics["best/val_accuracy"] == pytest.approx(best)


# ----------------------------------------------------------------------------- seeding


SEED_ARCH = {"depth": 2, "width": 16, "shape": "constant", "activation": "relu", "dropout": 0.0}


def test_seeding_an_existing_study_queues_and_touches_nothing_else(tmp_path: Path) -> None:
    from codenas.decisions.seeding import seed_search
    from codenas.search.storage import load_study
    from tests.decisions.test_transfer import source_study

    config = make_config(tmp_path, ["study.trials=1"])
    codenas.search.run(config)  # an existing study with a front and a finished parent run
    client, parent = _parent(config)
    artifacts = Path(parent.info.artifact_uri.removeprefix("file://"))
    stamps = {p.name: p.stat().st_mtime_ns for p in artifacts.iterdir()}
    assert "pareto_front.png" in stamps
    history = client.get_metric_history(parent.info.run_id, "trials_complete")

    source = source_study(tmp_path / "source", [dict(SEED_ARCH)])
    seeds, queued = seed_search(config, source)
    study = load_study(config.study.name, config.study.storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "WAITING"]  # nothing trained
    assert queued == [1] and len(seeds) == 1
    _, after = _parent(config)
    assert (after.info.status, after.info.end_time) == (parent.info.status, parent.info.end_time)
    assert client.get_metric_history(parent.info.run_id, "trials_complete") == history
    assert {p.name: p.stat().st_mtime_ns for p in artifacts.iterdir()} == stamps  # no re-logging
    assert not (tmp_path / "reports").exists()


def test_seeding_a_new_study_creates_it_with_its_parent_run_and_trains_nothing(
    tmp_path: Path,
) -> None:
    from codenas.decisions.seeding import seed_search
    from codenas.search.storage import load_study
    from tests.decisions.test_transfer import source_study

    config = make_config(tmp_path, ["study.name=seeded"])
    source = source_study(tmp_path / "source", [dict(SEED_ARCH)])
    _, queued = seed_search(config, source)
    study = load_study("seeded", config.study.storage)
    assert queued == [0] and [t.state.name for t in study.trials] == ["WAITING"]
    _, parent = _parent(config)  # exists, so the search that follows need not wait for it
    assert study.user_attrs["codenas.mlflow_parent_run_id"] == parent.info.run_id


def test_a_dead_workers_trial_found_during_the_last_trial_is_still_re_run(tmp_path: Path) -> None:
    # Another machine died in a trial; its heartbeat goes stale while this process finishes its
    # last trial. Re-queued then, the retry is not a new trial: this process runs it before it
    # ends (before, it was left WAITING for ever once every live worker had ended; seen in CI).
    grace = 4
    config = make_config(
        tmp_path,
        [
            "study.trials=1",
            "study.heartbeat_interval=1",
            f"study.grace_period={grace}",
            "tracking.enabled=false",
        ],
    )
    from codenas.search.storage import open_study, retried_trial_number, storage_for

    study, _ = open_study(config, storage_for(config))
    with pytest.warns(UserWarning):
        dead = study.ask()  # RUNNING with one heartbeat, then none: its worker is gone
    study._storage.record_heartbeat(dead._trial_id)
    beat = time.time()

    def outlast_the_grace(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.number != dead.number:  # this process's own trial has just ended
            time.sleep(max(0.0, beat + grace + 1 - time.time()))

    study = codenas.search.run(config, callbacks=[outlast_the_grace])
    states = {t.number: t.state.name for t in study.trials}
    retries = [t for t in study.trials if retried_trial_number(t) == dead.number]
    assert states[dead.number] == "FAIL"
    assert [t.state.name for t in retries] == ["COMPLETE"], states
    assert sum(s == "COMPLETE" for s in states.values()) == 2  # the one trial, and the retry
