"""The commands in README.md, docs/*.md and the `--help` epilogs work as written.

Three layers, cheapest first: every `codenas ...` line of the docs parses with the real
argument parser; the quick examples run and print what the text quotes; and the README's
"Picking" block runs, line by line, in one folder holding two studies (the first hour of a new
user, with small budgets).
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from codenas.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(text: str) -> list[str]:
    """The fenced code blocks of a Markdown text (any language), in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def doc_commands() -> list[tuple[str, str]]:
    """``(file, command)`` for every `codenas ...` command in a code block of the docs."""
    found = []
    for path in DOCS:
        for block in _blocks(path.read_text()):
            joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
            for line in joined.splitlines():
                line = line.strip().removeprefix("$ ")
                if not line.startswith("codenas ") or line.startswith("codenas:"):
                    continue
                line = re.split(r"\s+#\s|\s{3,}\(|;", line)[0].strip()  # comments, notes
                found.append((path.name, line))
    return found


def epilog_commands() -> list[str]:
    parser = build_parser()
    texts = [parser.epilog or ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    texts += [p.epilog or "" for p in sub.choices.values()]
    lines = [line.strip() for text in texts for line in text.splitlines()]
    return [re.split(r"\s+#\s", line)[0].strip() for line in lines if line.startswith("codenas ")]


def test_the_docs_have_commands_to_check() -> None:
    files = {f for f, _ in doc_commands()}
    assert {"README.md", "picking.md"} <= files
    assert len(doc_commands()) > 20 and len(epilog_commands()) > 8


@pytest.mark.parametrize("command", sorted({c for _, c in doc_commands()} | set(epilog_commands())))
def test_every_documented_command_parses(command: str) -> None:
    argv = shlex.split(command)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit_:
        if exit_.code != 0:  # `--help` exits 0
            pytest.fail(f"`{command}` is not a valid command line")


def _run(capsys: pytest.CaptureFixture[str], command: str) -> tuple[int, str, str]:
    code = main(shlex.split(command)[1:])
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_input_prints_what_the_readme_quotes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in _blocks(readme) if "$ codenas search my.yaml" in b)
    lines = block.strip().splitlines()
    pairs = [(lines[i][2:], lines[i + 1]) for i in range(0, len(lines), 2)]
    assert len(pairs) == 2
    (workdir / "my.yaml").write_text("space:\n  width: {min: 256, max: 8}\n")
    for command, quoted in pairs:
        code, _, err = _run(capsys, command)
        assert code == 2
        if quoted.endswith("..."):
            assert err.startswith(quoted.removesuffix("..."))
        else:
            assert err == quoted + "\n"


def test_codenas_metrics_lists_the_metrics_the_readme_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| family | metrics |")[1].split("\n\n")[0]
    named = set(re.findall(r"`([a-z_]+)`", table)) - {"test_"}
    code, out, _ = _run(capsys, "codenas metrics")
    listed = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    # The README says which two are functions only (they compare two layers).
    functions_only = {"linear_cka", "cka_matrix"}
    assert "`linear_cka` and `cka_matrix` compare two layers" in readme
    assert named - functions_only <= listed, sorted(named - functions_only - listed)
    code, out, _ = _run(capsys, "codenas spaces")
    assert code == 0 and "min_width" in out and "space.min_width" in readme


# ------------------------------------------------------------------ the first hour

SMALL = (
    "--set train.epochs=1 --set train.threads=1 --set metrics.samples=200 "
    "--set tracking.report=false --set 'space.width={min: 8, max: 32, log: true}' --no-progress"
)


def _picking_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("[docs/picking.md](docs/picking.md); in short:")[1]
    return [c for c in (line for line in _blocks(block)[0].splitlines()) if c.startswith("codenas")]


@pytest.mark.slow
def test_the_readme_picking_block_runs_in_a_folder_with_two_studies(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The README's first command (with a small budget), then a second config in the folder.
    code, out, err = _run(capsys, f"codenas search --trials 4 {SMALL}")
    assert code == 0, err
    front_line = next(line for line in out.splitlines() if line.startswith("  codenas front"))
    assert front_line.strip() == "codenas front digits-mlp"
    assert re.search(r"Pareto front: http://127\.0\.0\.1:5000/#/experiments/\d+/runs\?", out)
    code, _, err = _run(
        capsys, f"codenas search factors-mlp --trials 2 {SMALL} --set data.n_samples=600"
    )
    assert code == 0, err
    code, out, _ = _run(capsys, front_line.strip())
    assert code == 0 and out.startswith("Pareto front of study 'digits-mlp'")

    picking = (ROOT / "docs" / "picking.md").read_text()
    wine = picking.split("```yaml\n# wine-mlp.yaml\n")[1].split("```")[0]
    (workdir / "wine-mlp.yaml").write_text(wine)
    lines = [c.split("  #")[0].strip() for c in _picking_block()]
    assert len(lines) == 8
    for command in lines:
        if command.startswith("codenas report"):
            continue  # reports have their own tests (tests/decisions/test_report.py)
        command = command.replace("--trial 8", "--trial 3")  # the small search has 4 trials
        if command.startswith("codenas train"):
            command = command.replace("--epochs 50", "--epochs 1")
            if not (workdir / "spec.yaml").exists():  # no member met the requirement
                assert _run(capsys, "codenas pick --prefer val_accuracy --out spec.yaml")[0] == 0
        if command.startswith("codenas search"):
            command += " --trials 2 --set train.epochs=1 --no-progress"
        code, out, err = _run(capsys, command)
        if command.startswith("codenas pick --require 'val_accuracy>=0.95'") and code == 1:
            # Announced in the README: no qualifying member lists the closest, exit 1.
            assert "no trial on the Pareto front of study 'digits-mlp'" in err
            continue
        assert code == 0, f"`{command}`: {err}"
        assert "factors-mlp" not in out or command.endswith("factors-mlp"), command
    assert "Pareto front of study 'factors-mlp'" in out


@pytest.mark.slow
def test_the_readme_python_api_block_runs(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's "Python API" block, as written but for its budget (2 trials, 1 epoch) and
    the path of its packaged config, in an empty folder (its stores land there)."""
    readme = (ROOT / "README.md").read_text()
    block = _blocks(readme.split("## Python API")[1])[0]
    budget = '["train.epochs=5"]'
    assert budget in block and "n_trials=20" in block and '"configs/' in block
    small = '["train.epochs=1", "train.threads=1", "metrics.samples=200"]'
    code = block.replace(budget, small).replace("n_trials=20", "n_trials=2")
    code = code.replace('"configs/', f'"{ROOT}/configs/')
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md (Python API)", "exec"), namespace)
    assert (workdir / "optuna.db").exists()
    assert len(namespace["rows"]) >= 1  # type: ignore[arg-type]
    assert len(namespace["scores"]) == 1  # type: ignore[arg-type]
    # A pick, or (1 epoch) the closest members printed by the block's except clause.
    if "choice" not in namespace:
        assert "needs >= 0.95" in capsys.readouterr().out
