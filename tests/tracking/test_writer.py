"""Background tracking writes (codenas/tracking/writer.py): in order, flushed, errors kept, and
a search whose runs end in the background records exactly what a synchronous one does."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import codenas
from codenas.errors import TrackingUnavailable
from codenas.tracking.writer import BackgroundWriter
from tests.conftest import make_config


def test_calls_run_in_order_on_one_thread_and_flush_waits_for_them() -> None:
    writer = BackgroundWriter()
    done: list[tuple[int, str]] = []
    for i in range(20):
        writer.submit(
            lambda i=i: (time.sleep(0.005), done.append((i, threading.current_thread().name)))
        )
    assert writer.pending > 0  # returned before the writes ran
    writer.flush()
    assert writer.pending == 0
    assert [i for i, _ in done] == list(range(20))
    assert {name for _, name in done} == {"codenas-writer"}
    writer.flush()  # nothing queued: returns at once


def test_the_first_error_is_kept_and_later_calls_still_run() -> None:
    writer = BackgroundWriter()
    ran = []
    writer.submit(lambda: (_ for _ in ()).throw(TrackingUnavailable("down")))
    writer.submit(lambda: (_ for _ in ()).throw(ValueError("second")))
    writer.submit(lambda: ran.append(1))
    writer.flush()
    assert isinstance(writer.error, TrackingUnavailable) and ran == [1]


def test_flush_without_a_thread_is_a_no_op() -> None:
    BackgroundWriter().flush()


def _runs(tmp_path: Path, study: str) -> list[tuple[int, str, str, str, tuple[str, ...]]]:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    out = []
    for run in client.search_runs([experiment.experiment_id]):
        tags = run.data.tags
        if "codenas.trial_number" not in tags:
            continue  # the study's parent run
        out.append(
            (
                int(tags["codenas.trial_number"]),
                run.info.status,
                tags["codenas.state"],
                tags["codenas.pareto"],
                tuple(sorted(run.data.metrics)),
            )
        )
    return sorted(out)


@pytest.mark.parametrize("background", [True, False])
def test_a_search_records_the_same_either_way(tmp_path: Path, background: bool) -> None:
    """Every run ended, with its state, its Pareto tag as Optuna's front says, and its metrics,
    when ``codenas.search.run`` returns; the same as the synchronous tracker."""
    name = f"bg-{background}"
    config = make_config(
        tmp_path,
        [
            f"study.name={name}",
            f"tracking.experiment={name}",
            f"tracking.background={str(background).lower()}",
            "study.trials=6",
        ],
    )
    assert config.tracking.writes_in_background is background
    study = codenas.search.run(config)
    front = {t.number for t in study.best_trials}
    runs = _runs(tmp_path, name)
    assert [r[0] for r in runs] == [t.number for t in study.trials]
    for number, status, state, pareto, metrics in runs:
        assert (status, state) == ("FINISHED", "COMPLETE")
        assert pareto == ("true" if number in front else "false")
        assert "val_accuracy" in metrics


def test_background_writes_default_to_tracking_servers_only(tmp_path: Path) -> None:
    local = make_config(tmp_path)
    assert local.tracking.background is None and not local.tracking.writes_in_background
    remote = make_config(tmp_path, ["tracking.uri=http://127.0.0.1:5000"])
    assert remote.tracking.writes_in_background
    forced = make_config(
        tmp_path, ["tracking.uri=http://127.0.0.1:5000", "tracking.background=false"]
    )
    assert not forced.tracking.writes_in_background


def test_an_interrupted_search_flushes_the_queued_writes(tmp_path: Path) -> None:
    """Ctrl-C after a trial (here raised by a callback that runs after the tracker's): every
    trial that ran has its run ended, COMPLETE and FINISHED, when ``run`` re-raises; the end
    of the interrupted trial's run was still queued when the interrupt came."""
    name = "bg-interrupted"
    config = make_config(
        tmp_path,
        [
            f"study.name={name}",
            f"tracking.experiment={name}",
            "tracking.background=true",
            "study.trials=5",
        ],
    )

    def interrupt(study, trial) -> None:
        if trial.number == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        codenas.search.run(config, callbacks=[interrupt])
    runs = _runs(tmp_path, name)
    assert [r[0] for r in runs] == [0, 1, 2]
    assert {(status, state) for _, status, state, _, _ in runs} == {("FINISHED", "COMPLETE")}
