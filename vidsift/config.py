"""ConfigError, where vidsift/deploy/checks.py has always imported it from.

The settings themselves are vidsift/settings.py: one object, and the only place the Lambda
side reads the environment. This module stays this small on purpose: deploy_checks runs on
the deploy machine's python3, which may be 3.9 (tests/test_deploy_python.py checks every
module it imports), and the settings' parts import core modules that need a newer one.
"""

from __future__ import annotations

import importlib
from typing import Any

from vidsift.core.errors import ConfigError

__all__ = ["ConfigError"]


def __getattr__(name: str) -> Any:
    """``from vidsift.config import Settings``, as code written before vidsift/settings.py
    does; imported on use, so the deploy checks' python3 never loads it."""
    if name == "Settings":
        return importlib.import_module("vidsift.settings").Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
