"""``python -m mdfx`` is the ``mdfx`` command."""

import sys

from mdfx.cli import main

sys.exit(main())
