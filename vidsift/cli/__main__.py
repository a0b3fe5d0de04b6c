"""``python -m vidsift.cli``: the ``vidsift`` command."""

from vidsift.cli.commands import entry

entry()
