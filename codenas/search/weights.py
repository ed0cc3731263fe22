"""A trial keeps its trained weights: one store per study, bounded to what later steps read.

Every trial's trained ``state_dict`` is written as an Optuna artifact
(``optuna.artifacts.FileSystemArtifactStore``; its id in the trial's user attribute
``code.weights``) before the trial is marked COMPLETE, so the steps after a search load a
network instead of training it again: the end-of-search reports, ``codenas report``,
``rightsize``, ``erase``, ``distil`` and ``edit`` (each says which it did). After each trial,
the weights of finished trials that are not on the Pareto front are removed, so the disk holds
about one ``state_dict`` per front member (plus the trials running). A study created anew under
a name whose directory holds weights starts with an empty store. The code sampler's
inheritance ablation (``inherit: true``) keeps every trial's weights, as its moves need them.

The directory is ``study.weights_dir`` (default ``weights/<study name>/`` beside a SQLite
storage's file, or in the working directory for a server storage); workers on several machines
need a directory they all see, or ``study.keep_weights: false``.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    import torch
    from torch import nn

WEIGHTS_ATTR = "code.weights"
"""Trial user attribute: the artifact id of the trial's trained ``state_dict``."""
WEIGHTS_DIR_ATTR = "code.weights_dir"
"""Trial user attribute: the absolute directory of the store that holds it."""

_log = logging.getLogger(__name__)


def weights_dir(study_name: str, configured: str | None = None, storage: str = "") -> Path:
    """Where the weights of study ``study_name`` are kept: ``configured`` if given, else
    ``weights/<name>/`` beside a SQLite storage's file, else in the working directory."""
    if configured:
        return Path(configured)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study_name)
    base = Path(".")
    if storage.startswith("sqlite:///"):
        base = Path(storage.removeprefix("sqlite:///")).parent
    return base / "weights" / safe


class WeightStore:
    """The trained weights of one study's trials.

    Args:
        root: the store's directory (created on first write).
        keep_all: keep every trial's weights (the inheritance ablation), never prune.
    """

    def __init__(self, root: str | os.PathLike[str], *, keep_all: bool = False) -> None:
        self.root = Path(root)
        self.keep_all = keep_all
        self._store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            from optuna.artifacts import FileSystemArtifactStore

            self.root.mkdir(parents=True, exist_ok=True)
            self._store = FileSystemArtifactStore(str(self.root))
        return self._store

    def reset(self) -> None:
        """Remove every stored weight (a study created anew under an old name)."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self._store = None

    def save(self, trial: optuna.Trial, model: nn.Module) -> str:
        """Store ``model``'s weights as an artifact of ``trial`` (id in ``code.weights``)."""
        import torch
        from optuna.artifacts import upload_artifact

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"trial-{trial.number}.pt")
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
            artifact = upload_artifact(
                artifact_store=self.store, file_path=path, study_or_trial=trial
            )
        trial.set_user_attr(WEIGHTS_ATTR, artifact)
        trial.set_user_attr(WEIGHTS_DIR_ATTR, str(self.root.resolve()))
        return artifact

    def load(self, user_attrs: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
        """The ``state_dict`` a trial stored, or ``None`` (none stored, or no longer here)."""
        import torch

        artifact = user_attrs.get(WEIGHTS_ATTR)
        if not artifact or not (self.root / str(artifact)).exists():
            return None
        with self.store.open_reader(str(artifact)) as f:
            data = f.read()
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def prune(self, trials: Iterable[optuna.trial.FrozenTrial], keep: set[int]) -> int:
        """Remove the weights of finished trials not in ``keep``; return how many went.

        Trials still running (or waiting) keep theirs: they may be about to join the front.
        """
        if self.keep_all:
            return 0
        from optuna.artifacts.exceptions import ArtifactNotFound

        removed = 0
        for trial in trials:
            artifact = trial.user_attrs.get(WEIGHTS_ATTR)
            if not artifact or trial.number in keep or not trial.state.is_finished():
                continue
            # No exists() check first: another worker pruning the same front may remove the
            # file between the check and the removal, so the removal's own error is the test.
            try:
                self.store.remove(str(artifact))
                removed += 1
            except (ArtifactNotFound, OSError) as err:  # gone already (another worker)
                _log.debug("weights of trial %d: %s", trial.number, err)
        return removed

    def prune_to_front(
        self, study: optuna.Study, after: optuna.trial.FrozenTrial | None = None
    ) -> int:
        """:meth:`prune`, keeping the Pareto front's members; ``after``: the trial that just
        ended (the study as read after it, shared with the other callbacks)."""
        from codenas.search._optuna_private import best_trials, trials_after

        trials = study.get_trials(deepcopy=False) if after is None else trials_after(study, after)
        front = {t.number for t in best_trials(study, trials)}
        return self.prune(trials, front)

    def disk_bytes(self) -> int:
        """Bytes the store holds now."""
        if not self.root.exists():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def study_store(config: Any, study_name: str) -> WeightStore | None:
    """The weight store of a search with ``config`` (``None``: ``study.keep_weights: false``).

    The code sampler's inheritance ablation has its own store, which keeps every trial.
    """
    options = config.study.sampler_options
    if config.study.sampler == "code" and options.get("inherit", False):
        return WeightStore(str(options.get("inherit_store", "codenas-weights")), keep_all=True)
    if not config.study.keep_weights:
        return None
    return WeightStore(weights_dir(study_name, config.study.weights_dir, config.study.storage))


def load_trial_network(user_attrs: Mapping[str, Any]) -> nn.Module | None:
    """The trained network a trial kept (its spec rebuilt, its weights loaded, eval mode), or
    ``None`` when it kept none or they were pruned (the trial left the front)."""
    from codenas.spaces import build_model, spec_from_dict

    root = user_attrs.get(WEIGHTS_DIR_ATTR)
    if not root or "spec" not in user_attrs:
        return None
    state = WeightStore(root).load(user_attrs)
    if state is None:
        return None
    model = build_model(spec_from_dict(user_attrs["spec"]))
    model.load_state_dict(state)
    return model.eval()


def has_kept_weights(user_attrs: Mapping[str, Any]) -> bool:
    """Whether a trial's kept weights are still on disk (without loading them)."""
    root, artifact = user_attrs.get(WEIGHTS_DIR_ATTR), user_attrs.get(WEIGHTS_ATTR)
    return bool(root and artifact and (Path(root) / str(artifact)).exists())


def kept_network_of(storage: str, study_name: str, number: int) -> nn.Module | None:
    """The network trial ``number`` of a stored study kept, or ``None`` (no such study or
    trial here, or it kept none)."""
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        trial = study.get_trials(deepcopy=False)[number]
    except Exception:  # the storage is elsewhere: the caller re-trains
        return None
    return load_trial_network(trial.user_attrs)
