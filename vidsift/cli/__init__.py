"""The commands a user types: ``vidsift`` (main: run, up, query, frames, report, faces),
``make demo`` (demo) and the SQL over a results folder they share (query)."""

from vidsift.cli.commands import build_parser, entry, main

__all__ = ["build_parser", "entry", "main"]
