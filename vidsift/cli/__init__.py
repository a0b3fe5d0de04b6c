"""The commands a user types: ``vidsift`` (commands: run, up, query, frames, report; faces,
visitors, cameras and recount in modules of their own) and ``make demo`` (demo). Each is a
thin layer over what it drives: the local stack (vidsift.local), the results folder's SQL
engine (vidsift.local.warehouse), the report (vidsift.report) or the stages' admin calls."""

from vidsift.cli.commands import build_parser, entry, main

__all__ = ["build_parser", "entry", "main"]
