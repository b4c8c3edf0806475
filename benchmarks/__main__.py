"""Run every benchmark in turn: ``python -m benchmarks [name ...]``."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = [
    "coldstart",
    "ingest",
    "containment",
    "notify",
    "export",
    "writeback",
    "tenancy",
    "latency",
    "storm",
    "console",
]


def main(argv: list[str]) -> int:
    names = argv or BENCHMARKS
    failed = []
    for name in names:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"benchmarks.{name}":
                print(f"\n== {name}: not present, skipped")
                continue
            raise
        print(f"\n== {name}", flush=True)
        started = time.perf_counter()
        try:
            module.main()
        except Exception as exc:
            failed.append(name)
            print(f"!! {name} failed: {type(exc).__name__}: {exc}")
        print(f"   ({time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
