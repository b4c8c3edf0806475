"""A loopback HTTPS fake of the Azure services soc-responder talks to.

One ``AzureFake`` is one HTTPS server on 127.0.0.1 (certificate from ``trustme``, valid for
127.0.0.1 and localhost) that answers, on one port:

- Azure Resource Manager (``/subscriptions/...``, ``arm.py``): a generic resource store
  (PUT/GET/PATCH/DELETE, lists, optional long-running operations) with realistic NIC / NSG / VM
  documents (``arm_documents.py``, ``arm_resources.py``), Sentinel incidents and comments, and
  generic ARM POST actions (Defender for Cloud alert state changes...);
- Microsoft Graph (``/v1.0/...``, ``graph.py``): users, service principals,
  ``revokeSignInSessions``, ``sendMail``;
- Log Analytics (``/v1/workspaces/{id}/query``, ``/v1/$batch``, ``log_analytics.py``);
- ACS Call Automation (``/calling/callConnections...``, ``acs.py``);
- Key Vault secrets (``/secrets/{name}``, ``key_vault.py``, issue 16) and Teams Workflows webhooks
  (``/powerautomate/…/workflows/{id}/triggers/manual/paths/invoke``, ``teams.py``, issue 16).

Next to it a plain-HTTP ``ManagedIdentityEndpoint`` (``identity.py``) speaks the App Service
managed-identity protocol (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``), so the real
``DefaultAzureCredential`` gets tokens, and the fake checks every API request for a token it
issued, for the right audience.

Every request is recorded (``requests()``, ``writes()``); faults (status, headers, body, delay,
dropped connection) can be injected per method and path (``inject()``); ``reset()`` gives a fresh
state between tests (``server.py``; the sockets, TLS and TCP_NODELAY are in ``transport.py``).

Layers (imports point down only): ``records`` ← ``transport`` ← ``identity`` ← ``server`` ←
the services (``arm``, ``graph``, ``log_analytics``, ``acs``) ← ``azure`` (``AzureFake``).
Only the standard library and ``trustme`` are used.
"""

from devtools.fakes.acs import ACS_AUDIENCE, CallRecord
from devtools.fakes.arm_documents import ArmPath, json_diff, parse_arm_path
from devtools.fakes.azure import AzureFake
from devtools.fakes.graph import SentMail
from devtools.fakes.identity import ManagedIdentityEndpoint, TokenGrant
from devtools.fakes.records import FakeResponse, Fault, RecordedRequest
from devtools.fakes.server import wait_until
from devtools.fakes.teams import TeamsPost

__all__ = [
    "ACS_AUDIENCE",
    "ArmPath",
    "AzureFake",
    "CallRecord",
    "FakeResponse",
    "Fault",
    "ManagedIdentityEndpoint",
    "RecordedRequest",
    "SentMail",
    "TeamsPost",
    "TokenGrant",
    "json_diff",
    "parse_arm_path",
    "wait_until",
]
