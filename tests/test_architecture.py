"""The one-way house (docs/architecture.md): layering contracts and no import cycles."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    assert LINT is not None, "import-linter is a dev dependency: pip install -e '.[dev]'"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module (each is an import cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_between_modules_counting_function_local_imports() -> None:
    # grimp reads every import statement, those inside function bodies included;
    # imports under `if TYPE_CHECKING:` never run and are left out.
    graph = grimp.build_graph("codenas", exclude_type_checking_imports=True)
    edges = {
        m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("codenas")}
        for m in graph.modules
    }
    assert sum(map(len, edges.values())) > 100  # the graph was really read
    assert _strongly_connected(edges) == []


def test_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _strongly_connected(edges) == [["a", "b", "c"]]


def test_the_layering_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    """A copy of the package with one function-local import from metrics up to decisions."""
    shutil.copytree(ROOT / "codenas", tmp_path / "codenas", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "codenas" / "metrics" / "capacity.py"
    target.write_text(
        target.read_text()
        + "\n\ndef _upward() -> None:\n    from codenas.decisions import picking  # noqa: F401\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "codenas.metrics.capacity -> codenas.decisions.picking" in result.stdout


def test_moved_names_still_resolve_on_codenas_search_with_a_deprecation_warning() -> None:
    import warnings

    import codenas
    import codenas.decisions
    import codenas.evaluation

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the search layer's own names do not warn
        assert callable(codenas.search.run) and callable(codenas.search.front)
    for name, home in (("pick", codenas.decisions), ("rank_early", codenas.evaluation)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert getattr(codenas.search, name) is getattr(home, name)
        assert any(
            issubclass(w.category, DeprecationWarning) and home.__name__ in str(w.message)
            for w in caught
        )
