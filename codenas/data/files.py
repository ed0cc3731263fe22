"""User data from files: ``npz`` (numpy arrays) and ``csv`` (a table with a header row).

``npz`` (``data.path``) holds the arrays

* ``x``: inputs, ``(n, features)`` for tables, ``(n, height, width)`` for grayscale images or
  ``(n, channels, height, width)`` for images (channels first); any real or integer dtype.
* ``y``: for ``task: classification`` (default) integer class labels ``(n,)`` in ``0..C-1``
  with every class present; for ``task: regression`` real targets ``(n,)`` or ``(n, t)``.
* ``factors`` (optional): known generative factors ``(n, k)`` (or ``(n,)``), integer codes;
  each column is renumbered ``0..L-1`` in sorted order.
* ``factor_names`` (optional): ``(k,)`` strings naming the factor columns.

``csv`` (``data.path``) has one header row and one sample per row: ``data.label`` names the
label column (for regression, one or more target columns), ``data.factors`` optional factor
columns, and ``data.features`` the input columns (default: every other column). Every cell is
a number; an empty cell counts as missing.

Every file is checked before any training, and each problem is one :class:`DataError` line:
a missing file (named), wrong shapes, NaN or infinite values, labels that are not the integers
``0..C-1``, factors that are not integers, and too few samples for the split.

The user-file loaders in one file (about 410 lines): ``npz`` and ``csv`` share every check.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import field_validator, model_validator

from codenas.data.base import DataConfig, Dataset, make_dataset, register_dataset
from codenas.errors import DataError, first_line, unknown_name_message

TaskName = Literal["classification", "regression"]


class FileConfig(DataConfig):
    """``data:`` keys shared by the file datasets."""

    path: str
    task: TaskName = "classification"
    standardise: bool = True  # z-score inputs on the train part

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a data file path is required, got an empty string")
        return value


class NpzConfig(FileConfig):
    """``data:`` of ``npz``: ``path`` to a ``.npz`` file with arrays ``x``, ``y``, ``factors``."""

    name: str = "npz"


class CsvConfig(FileConfig):
    """``data:`` of ``csv``: ``path``, the ``label`` column, optional ``factors``/``features``."""

    name: str = "csv"
    label: str | tuple[str, ...]
    factors: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    delimiter: str = ","

    @field_validator("factors", "features", mode="before")
    @classmethod
    def _as_tuple(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"a delimiter is one character, got {value!r}")
        return value

    @model_validator(mode="after")
    def _columns(self) -> CsvConfig:
        labels = self.label_columns
        if self.task == "classification" and len(labels) != 1:
            raise ValueError(f"label: classification needs one label column, got {list(labels)}")
        for key, names in (("label", labels), ("factors", self.factors)):
            if len(set(names)) != len(names):
                raise ValueError(f"{key}: each column may be named once, got {list(names)}")
        # A label or factor among the inputs would leak the answer; a label that is also a
        # factor is fine (the task is one of the factors).
        leaked = sorted(set(self.features or ()) & {*labels, *self.factors})
        if leaked:
            raise ValueError(
                f"features: label and factor columns cannot be features too, got "
                f"{', '.join(leaked)}"
            )
        return self

    @property
    def label_columns(self) -> tuple[str, ...]:
        return (self.label,) if isinstance(self.label, str) else tuple(self.label)


# ----------------------------------------------------------------------------- checks


def _existing(path_text: str) -> Path:
    path = Path(path_text).expanduser()
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to the working directory {os.getcwd()})"
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"data.path: the file {path_text!r} {what}{where}")
    return path


def _numeric(src: str, what: str, a: np.ndarray) -> np.ndarray:
    if a.dtype == bool:
        return a.astype(np.int64)
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise DataError(f"{src}: {what} must hold real numbers, got dtype {a.dtype}")
    return a


def _finite(src: str, what: str, a: np.ndarray) -> None:
    bad = ~np.isfinite(a) if np.issubdtype(a.dtype, np.floating) else None
    if bad is not None and bad.any():
        rows = np.flatnonzero(bad.reshape(len(a), -1).any(axis=1))
        raise DataError(
            f"{src}: {what} has {int(bad.sum())} NaN or infinite value(s) in {len(rows)} "
            f"row(s), first in row {int(rows[0])}; remove or impute them first"
        )


def _integers(src: str, what: str, a: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.floating):
        fractional = a != np.round(a)
        if fractional.any():
            row = int(np.flatnonzero(fractional.reshape(len(a), -1).any(axis=1))[0])
            value = a.reshape(len(a), -1)[row][fractional.reshape(len(a), -1)[row]][0]
            raise DataError(f"{src}: {what} must be integers, got {float(value):g} in row {row}")
    return a.astype(np.int64)


def check_labels(src: str, y: np.ndarray, what: str = "y") -> np.ndarray:
    """Class labels ``(n,)`` (or ``(n, 1)``) as int64, checked to be exactly ``0..C-1``."""
    y = _numeric(src, what, np.asarray(y))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{src}: {what} must have shape (n,) for classification, got {y.shape}; "
            "for several real targets set data.task: regression"
        )
    _finite(src, what, y)
    y = _integers(src, f"{what} (class labels 0..C-1)", y)
    classes = np.unique(y)
    if len(classes) and classes[0] < 0:
        raise DataError(
            f"{src}: {what} must be the class labels 0..C-1, got negative label {int(classes[0])}"
        )
    if len(classes) < 2 or classes[-1] != len(classes) - 1:
        missing = sorted(set(range(int(classes[-1]) + 1)) - set(classes.tolist()))
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        detail = (
            f"only one class ({int(classes[0])})"
            if len(classes) < 2
            else f"labels 0..{int(classes[-1])} with {shown} missing"
        )
        raise DataError(
            f"{src}: {what} must be the class labels 0..C-1 with C >= 2 and every class "
            f"present, got {detail}; renumber the classes 0..C-1"
        )
    return y


def check_arrays(
    src: str,
    x: np.ndarray,
    y: np.ndarray,
    factors: np.ndarray | None,
    task: TaskName,
    y_name: str = "y",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate user arrays; return ``x`` (2-D or 4-D), ``y`` and integer ``factors``.

    Raises:
        DataError: one line naming ``src``, the array, the rule and the offending value.
    """
    x = _numeric(src, "x", np.asarray(x))
    if x.ndim == 3:  # grayscale images (n, h, w)
        x = x[:, None]
    if x.ndim not in (2, 4) or 0 in x.shape:
        raise DataError(
            f"{src}: x must have shape (n, features), (n, height, width) or (n, channels, "
            f"height, width), got {x.shape}"
            + ("; one feature per sample needs shape (n, 1)" if x.ndim == 1 else "")
        )
    n = len(x)
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != n:
        raise DataError(
            f"{src}: x and y must have the same number of rows, got {n} and "
            f"{y.shape[0] if y.ndim else 'a scalar y'}"
        )
    if factors is not None:
        factors = np.asarray(factors)
        if factors.ndim == 1:
            factors = factors[:, None]
        if factors.ndim != 2 or len(factors) != n:
            raise DataError(
                f"{src}: factors must have shape (n, n_factors) with n = {n} rows like x, "
                f"got {factors.shape}"
            )
    _finite(src, "x", x)
    if task == "classification":
        y = check_labels(src, y, y_name)
    else:
        y = _numeric(src, y_name, y).astype(np.float64)
        if y.ndim not in (1, 2):
            raise DataError(f"{src}: {y_name} must have shape (n,) or (n, targets), got {y.shape}")
        _finite(src, y_name, y)
    if factors is not None:
        factors = _numeric(src, "factors", factors)
        _finite(src, "factors", factors)
        factors = _integers(src, "factors (discrete levels)", factors)
        # Renumber each column 0..L-1: the metrics need codes, not the user's values.
        factors = np.stack(
            [np.unique(col, return_inverse=True)[1].reshape(-1) for col in factors.T], axis=1
        ).astype(np.int64)
    return x, y, factors


def _build(
    name: str,
    config: FileConfig,
    src: str,
    x: np.ndarray,
    y: np.ndarray,
    factors: np.ndarray | None,
    factor_names: Sequence[str],
    y_name: str = "y",
) -> Dataset:
    x, y, factors = check_arrays(src, x, y, factors, config.task, y_name)
    if factors is not None and len(factor_names) != factors.shape[1]:
        factor_names = [f"f{i}" for i in range(factors.shape[1])]
    try:
        return make_dataset(
            name,
            config,
            x,
            y,
            task=config.task,
            factors=factors,
            factor_names=tuple(factor_names),
            standardise=config.standardise,
            description=f"{name} file {src} ({len(x)} samples)",
        )
    except DataError as err:
        raise DataError(f"{src}: {err}") from None


# ----------------------------------------------------------------------------- npz


@register_dataset(
    "npz",
    config_model=NpzConfig,
    summary="your arrays: a .npz file with x, y and optional factors (data.path)",
    factors=None,
)
def load_npz(config: DataConfig) -> Dataset:
    """Read ``x``, ``y`` and optional ``factors`` / ``factor_names`` from ``data.path``."""
    assert isinstance(config, NpzConfig)
    path = _existing(config.path)
    src = config.path
    with open(path, "rb") as f:
        magic = f.read(6)
    if not magic.startswith(b"PK"):  # an .npz is a zip archive
        what = "a .npy file (one array)" if magic == b"\x93NUMPY" else "not a .npz archive"
        raise DataError(f"{src}: {what}; write the arrays with numpy.savez(path, x=..., y=...)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as err:  # object arrays need pickle, which a data file must not use
        raise DataError(
            f"{src}: cannot read the arrays ({first_line(err, None)}); save numeric arrays, not "
            "Python objects"
        ) from None
    except Exception as err:
        raise DataError(f"{src}: not a readable .npz file ({first_line(err, None)})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DataError(
            f"{src}: needs arrays 'x' and 'y', missing {', '.join(map(repr, missing))} "
            f"(arrays in the file: {', '.join(sorted(arrays)) or 'none'})"
        )
    names = [str(s) for s in np.atleast_1d(arrays.get("factor_names", np.array([])))]
    return _build("npz", config, src, arrays["x"], arrays["y"], arrays.get("factors"), names)


# ----------------------------------------------------------------------------- csv


def _read_table(path: Path, src: str, delimiter: str) -> tuple[list[str], np.ndarray, list[int]]:
    """Header, cells ``(rows, columns)`` as stripped strings, and each row's line number."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{src}: the file is empty; it needs a header row and data rows")
            header = [h.strip() for h in header]
            rows, lines = [], []
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue  # blank line
                if len(row) != len(header):
                    raise DataError(
                        f"{src}: line {reader.line_num} has {len(row)} fields, the header "
                        f"has {len(header)}"
                    )
                rows.append([cell.strip() for cell in row])
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise DataError(f"{src}: not a UTF-8 text file ({err.reason})") from None
    except csv.Error as err:
        raise DataError(f"{src}: not a valid CSV file ({err})") from None
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"{src}: the header names column(s) {', '.join(dupes)} more than once")
    if not rows:
        raise DataError(f"{src}: the file has a header but no data rows")
    return header, np.array(rows, dtype=str).reshape(len(rows), len(header)), lines


def _column_index(src: str, key: str, column: str, header: list[str]) -> int:
    if column not in header:
        raise DataError(f"{src}: {key}: {unknown_name_message('column', column, header)}")
    return header.index(column)


def _numbers(
    src: str, cells: np.ndarray, names: Sequence[str], lines: Sequence[int], role: str
) -> np.ndarray:
    """Cells ``(rows, k)`` as float64; empty cells become NaN (so the NaN check reports them)."""
    out = np.empty(cells.shape, dtype=np.float64)
    for j, column in enumerate(names):
        col = np.where(cells[:, j] == "", "nan", cells[:, j])
        try:
            out[:, j] = col.astype(np.float64)
        except ValueError:
            for i, cell in enumerate(col):
                try:
                    float(cell)
                except ValueError:
                    hint = (
                        "; the classes must be the integers 0..C-1: renumber them"
                        if role == "label"
                        else "; encode it as numbers or leave it out"
                    )
                    raise DataError(
                        f"{src}: {role} column {column!r} holds text {str(cell)!r} (line "
                        f"{lines[i]}){hint}"
                    ) from None
        bad = ~np.isfinite(out[:, j])
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{src}: {role} column {column!r} has {int(bad.sum())} missing, NaN or "
                f"infinite value(s), first on line {lines[first]}; remove or impute them first"
            )
    return out


@register_dataset(
    "csv",
    config_model=CsvConfig,
    summary="your table: a .csv with a header, a label column, optional factor columns",
    factors=None,
)
def load_csv(config: DataConfig) -> Dataset:
    """Read the table at ``data.path``: ``label`` column(s), ``factors``, ``features``."""
    assert isinstance(config, CsvConfig)
    path = _existing(config.path)
    src = config.path
    header, cells, lines = _read_table(path, src, config.delimiter)
    label_idx = [_column_index(src, "data.label", c, header) for c in config.label_columns]
    factor_idx = [_column_index(src, "data.factors", c, header) for c in config.factors]
    if config.features is None:
        taken = {*label_idx, *factor_idx}
        feature_idx = [i for i in range(len(header)) if i not in taken]
    else:
        feature_idx = [_column_index(src, "data.features", c, header) for c in config.features]
    if not feature_idx:
        raise DataError(f"{src}: no feature columns left besides the label and factors")

    def columns(idx: list[int], role: str) -> np.ndarray:
        return _numbers(src, cells[:, idx], [header[i] for i in idx], lines, role)

    x = columns(feature_idx, "feature")
    y = columns(label_idx, "label")
    y = y[:, 0] if len(label_idx) == 1 else y
    factors = columns(factor_idx, "factor") if factor_idx else None
    y_name = f"label column {config.label_columns[0]!r}" if len(label_idx) == 1 else "labels"
    return _build("csv", config, src, x, y, factors, list(config.factors), y_name)
