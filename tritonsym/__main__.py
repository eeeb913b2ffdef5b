"""``python -m tritonsym``: the same as the ``tritonsym`` command."""

import sys

from .cli import main

sys.exit(main())
