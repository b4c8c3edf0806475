"""Cold start: a fresh `import function_app` against a fresh import of just the Functions libraries.

Target: ≤ 1.25× (SDK clients and domain models load on first use, not at import).
Each figure is the median of interleaved runs in fresh interpreters.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
BASELINE = "import azure.functions, azure.durable_functions"
APP = "import function_app"


def _time(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - started


def main() -> None:
    _time(BASELINE), _time(APP)  # warm the OS file cache
    base, app = [], []
    for _ in range(RUNS):
        base.append(_time(BASELINE))
        app.append(_time(APP))
    b, a = statistics.median(base), statistics.median(app)
    print(f"   bare `{BASELINE}`: median {b * 1000:.0f} ms over {RUNS} fresh interpreters")
    print(f"   `{APP}`:          median {a * 1000:.0f} ms")
    print(f"   ratio app / bare: {a / b:.2f}x (target <= 1.25x)")
