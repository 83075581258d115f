"""``python -m surrogate_natgrad``: the command line (see :mod:`surrogate_natgrad.cli`)."""

from __future__ import annotations

import sys

from surrogate_natgrad.cli import main

if __name__ == "__main__":
    sys.exit(main())
