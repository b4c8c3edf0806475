"""What a refused Entra ID token request means, in the words of what to fix (issue 11).

``azure-identity`` raises ``ClientAuthenticationError`` for every token failure, with Entra's
``AADSTS`` code in its message. Containment (the Graph directory) and preflight both turn it into the
shared adapter vocabulary: a refusal Entra will repeat (consent missing, unknown tenant, federated
credential mismatch) is final — evidenced and escalated, never retried for hours — while a throttled or
failing token endpoint (after azure-identity's own retries) is transient.
"""

from __future__ import annotations

import re

from shared.errors import AccessDeniedError, AdapterError, TransientError

_AADSTS = re.compile(r"AADSTS(\d+)")
_CONSENT = {"700016", "7000229", "65001", "650051", "500011"}
_TENANT = {"90002", "90072", "900023"}
_FEDERATION = {"700211", "70021", "700212", "700213", "700024", "7000215", "700027"}


def token_failure(exc: Exception, tenant: str | None, client_id: str | None) -> AdapterError | None:
    """The adapter error for a failed token request, or None when ``exc`` is not one."""
    try:
        from azure.core.exceptions import ClientAuthenticationError
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, ClientAuthenticationError):
        return None
    message = str(getattr(exc, "message", None) or exc)
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    m = _AADSTS.search(message)
    code = m.group(1) if m else None
    where = f"tenant {tenant}" if tenant else "the SOC's tenant"
    if code in _CONSENT:
        reason = (
            f"consent missing in {where}: an administrator of that tenant must grant admin consent to the SOC "
            f"app {client_id} (docs/onboarding.md) (AADSTS{code})"
        )
    elif code in _TENANT:
        reason = f"{where} not found by Entra ID: check the partner's tenantId in PARTNERS_FILE (AADSTS{code})"
    elif code in _FEDERATION:
        reason = (
            f"the SOC app {client_id} does not accept the managed identity's assertion (federated credential "
            f"missing or wrong: run scripts/create-soc-app.sh) (AADSTS{code})"
        )
    elif status is not None and (status == 429 or status >= 500):
        return TransientError(f"token for {where}: Entra ID answered {status}", status=status, code="TokenEndpoint")
    elif code is None and status is None:
        return TransientError(f"token for {where}: {message[:300]}", code="TokenEndpoint")
    else:
        reason = f"no token for {where}: {message[:300]}"
    return AccessDeniedError(reason, status=status, code=f"AADSTS{code}" if code else "TokenRefused")
