"""Spaces own their networks: no module outside ``codenas/spaces/`` names a space or the spec
field of its layer sizes (it asks the space: ``layer_sizes``, ``layers_field``, surgery)."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import codenas
from codenas.spaces import SPACES

PACKAGE = Path(codenas.__file__).parent
# The one literal allowed, and why: the code sampler's plain-Optuna contract (docs/sampler.md)
# names the user attribute a move writes to, whatever space (if any) builds it.
ALLOWED = {("search/samplers/code.py", '"widths"')}


def names() -> set[str]:
    out = set()
    for name, space in SPACES.items():
        out |= {name, space.layers_field}
    return out


def offences(path: Path, words: set[str], root: Path = PACKAGE) -> list[str]:
    found = []
    text = path.read_text()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING and tok.string.strip("\"'") in words:
            found.append((tok.start[0], tok.string))
    attr = re.compile(r"spec\w*\.(" + "|".join(sorted(words)) + r")\b")
    for number, line in enumerate(text.splitlines(), start=1):
        if attr.search(line):
            found.append((number, attr.search(line).group(0)))
    rel = path.relative_to(root).as_posix()
    return [f"{rel}:{n}: {what}" for n, what in found if (rel, what) not in ALLOWED]


def test_no_caller_outside_spaces_names_a_space_or_its_layer_field() -> None:
    words = names()
    assert {"mlp", "cnn", "widths", "channels"} <= words
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] != "spaces":
            bad += offences(path, words)
    assert not bad, "\n".join(bad)


def test_the_check_sees_an_offence(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        '"""About "mlp" networks."""\nFIELDS = {"mlp": "widths"}\nn = len(spec.channels)\n'
    )
    assert offences(probe, names(), root=tmp_path) == [
        'probe.py:2: "mlp"',
        'probe.py:2: "widths"',
        "probe.py:3: spec.channels",
    ]
