"""Run every benchmark that exists, or the ones named: ``python -m bench frames faces``.

Options after the names go to the named benches (``python -m bench real --settings auto``):
everything from the first argument starting with ``-`` on is the benches' own, not a name.
"""

from __future__ import annotations

import importlib
import inspect
import platform
import sys
from datetime import UTC, datetime

BENCHES = ("frames", "detector", "faces", "alerts", "edge", "tracking", "visits", "real", "lines", "visitors")


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """The bench names (the arguments before the first one starting with ``-``) and the options
    (the rest), which the named benches parse themselves."""
    n = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    return argv[:n], argv[n:]


def main(argv: list[str]) -> int:
    names, options = split_args(argv)
    if options and not names:
        print("options go to the benches named before them: python -m bench NAME... [OPTIONS]", file=sys.stderr)
        return 2
    chosen = names or list(BENCHES)
    print(f"vidsift benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}\n")
    for name in chosen:
        try:
            module = importlib.import_module(f"bench.bench_{name}")
        except ModuleNotFoundError as exc:
            print(f"[{name}] skipped: {exc}")
            continue
        print(f"== {name} ==")
        if options and not inspect.signature(module.main).parameters:
            print(f"[{name}] takes no options: {' '.join(options)}", file=sys.stderr)
            return 2
        if options:
            module.main(options)
        else:
            module.main()
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
