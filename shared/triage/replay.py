"""``python -m shared.triage.replay --from … --to … [--partner id] [--json]`` (issue 13): the what-if replay
(``shared/triage/whatif.py``) from the command line, with the deployment's settings (Log Analytics workspace,
rules, partners) from the environment. Writes nothing, acts on nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from shared.triage.whatif import parse_window, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.triage.replay", description=__doc__)
    parser.add_argument("--from", dest="start", required=True, help="ISO 8601 start (inclusive)")
    parser.add_argument("--to", dest="end", required=True, help="ISO 8601 end (exclusive)")
    parser.add_argument("--partner", default=None)
    parser.add_argument("--json", action="store_true", help="the JSON body POST /api/replay answers")
    args = parser.parse_args(argv)
    from shared import runtime  # the entry point takes its adapters from the composition root

    ctx = runtime.context()
    body = {"from": args.start, "to": args.end, **({"partner": args.partner} if args.partner else {})}
    start, end, partner = parse_window(body, datetime.now(UTC))
    report = ctx.replay.run(start, end, partner).wire()
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
