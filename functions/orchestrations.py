"""Reading durable instance statuses the same way in every trigger."""

from __future__ import annotations

from typing import Any

# Instances that may still act; a start for the same id is refused while one is in these states.
RUNNING = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
# Instances that stopped without finishing: safe (and needed) to start again under the same id.
ENDED_UNFINISHED = frozenset({"Failed", "Terminated", "Canceled"})


def status_name(status: Any) -> str | None:
    """The runtime status of a ``get_status`` answer by name; None when the instance does not exist."""
    runtime_status = getattr(status, "runtime_status", None)
    return getattr(runtime_status, "name", None) or (str(runtime_status) if runtime_status else None)
