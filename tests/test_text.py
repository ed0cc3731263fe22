"""How numbers print in tables and messages (codenas.text)."""

from __future__ import annotations

from codenas.text import format_number


def test_numbers_print_one_way() -> None:
    assert format_number(9614.0) == "9614"
    assert format_number(12345.0, thousands=True) == "12,345"
    assert format_number(0.96114) == "0.9611"
    assert format_number(float("nan")) == "nan" and format_number(float("inf")) == "inf"
    assert format_number(0.0) == "0" and format_number(7) == "7" and format_number("x") == "x"
