"""``python -m vidsift.cli``: the ``vidsift`` command."""

import sys

from vidsift.cli.commands import main

sys.exit(main())
