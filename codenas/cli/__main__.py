"""``python -m codenas.cli``: the same as the ``codenas`` command."""

from codenas.cli import console_main

console_main()
