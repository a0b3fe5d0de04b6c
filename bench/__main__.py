"""Run every benchmark that exists, or the ones named: ``python -m bench frames faces``."""

from __future__ import annotations

import importlib
import platform
import sys
from datetime import UTC, datetime

BENCHES = ("frames", "detector", "faces", "alerts", "edge", "tracking", "visits", "real", "lines", "visitors")


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHES)
    print(f"vidsift benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}\n")
    for name in chosen:
        try:
            module = importlib.import_module(f"bench.bench_{name}")
        except ModuleNotFoundError as exc:
            print(f"[{name}] skipped: {exc}")
            continue
        print(f"== {name} ==")
        module.main()
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
