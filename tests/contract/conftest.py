"""Black-box contract helpers (SPEC sections 2, 7, 9, 10, 11 and the published sample payloads).

The samples are byte-for-byte copies of the product spec's ``samples/`` kept in ``tests/contract/samples``:
the contract is what they are, so these tests never read the repository's own (editable) ``samples/`` nor
anything outside the repository at run time. Principals are built here as App Service Authentication
injects them (base64 JSON, the claim type URIs Entra ID uses), not with the app's own helper.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

CONTRACT_SAMPLES = Path(__file__).resolve().parent / "samples"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
UPN_URI = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
EMAIL_URI = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def contract_sample(name: str) -> Any:
    """A fresh copy of one published sample payload."""
    return json.loads((CONTRACT_SAMPLES / name).read_text(encoding="utf-8"))


def principal(name: str | None, roles: list[str], *, name_claim: str = "preferred_username") -> dict[str, str]:
    """``X-MS-CLIENT-PRINCIPAL`` as App Service Authentication sends it for an Entra ID user."""
    claims = [{"typ": "aud", "val": "api://soc-responder"}, {"typ": "name", "val": "Display Name"}]
    if name is not None:
        claims.append({"typ": name_claim, "val": name})
    claims += [{"typ": "roles", "val": r} for r in roles]
    doc = {"auth_typ": "aad", "name_typ": EMAIL_URI, "role_typ": ROLE_URI, "claims": claims}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(doc).encode("utf-8")).decode("ascii")}


@pytest.fixture
def contract_app(app):
    """The app with the published partner registry sample as ``PARTNERS_FILE`` (loaded as-is)."""
    app.configure(PARTNERS_FILE=str(CONTRACT_SAMPLES / "partners.json"), CONTAINMENT_RETRY_BACKOFF_SECONDS="0")
    return app
