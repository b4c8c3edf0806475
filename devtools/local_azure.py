"""Azurite plus the HTTPS fake of Azure, with the app's settings pointed at them (demo and benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def local_azure(settings: dict[str, str] | None = None) -> Iterator[tuple]:
    """Start Azurite and the fake, set the process environment for the app, yield ``(azurite, fake)``.

    Evidence and host storage are Azurite; ARM, Graph, Log Analytics, ACS and the
    managed-identity endpoint are the fake; ``settings`` add to (or override) that.
    Cached settings and SDK clients are dropped so nothing built for another
    environment is reused.
    """
    from devtools.azurite import Azurite
    from devtools.fakes import AzureFake
    from shared import runtime
    from shared.adapters.clients import reset_clients

    with Azurite() as azurite, AzureFake() as fake:
        os.environ.update(
            {
                **fake.environment(),
                "EvidenceStorage": azurite.connection_string,
                "AzureWebJobsStorage": azurite.connection_string,
                "PARTNERS_FILE": str(ROOT / "config/partners.json"),
                **(settings or {}),
            }
        )
        runtime.reset()
        reset_clients()
        yield azurite, fake
