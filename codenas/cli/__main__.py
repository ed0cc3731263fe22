"""``python -m codenas.cli``: the same as the ``codenas`` command."""

import sys

from codenas.cli import main

sys.exit(main())
