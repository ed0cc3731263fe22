"""How numbers print in tables and messages (codenas.text)."""

from __future__ import annotations

from codenas.text import format_number


def test_numbers_print_one_way() -> None:
    assert format_number(9614.0) == "9614"
    assert format_number(12345.0, thousands=True) == "12,345"
    assert format_number(0.96114) == "0.9611"
    assert format_number(float("nan")) == "nan" and format_number(float("inf")) == "inf"
    assert format_number(0.0) == "0" and format_number(7) == "7" and format_number("x") == "x"


def test_first_line_shortens_an_error_to_one_line() -> None:
    from codenas.errors import first_line

    err = ValueError("bad value\n  Traceback (most recent call last): ...")
    assert first_line(err) == "bad value"
    assert first_line(err, 3) == "bad"
    assert first_line(err, with_type=True) == "ValueError: bad value"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError("x" * 500)) == "x" * 300
