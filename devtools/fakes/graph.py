"""Microsoft Graph in the fake (``/v1.0/...``, ``/beta/...``): users, service principals, sign-in revocation, sendMail.

A user or service principal seeded ``forbidden`` answers PATCH and revokeSignInSessions with 403
(a privileged admin the app may not touch); GET still works.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devtools.fakes.records import FakeResponse, RecordedRequest
from devtools.fakes.server import FakeServer


@dataclass
class SentMail:
    """A Graph sendMail the fake accepted."""

    sender: str  # the mailbox as addressed in the URL
    message: dict
    save_to_sent_items: Any
    timestamp: float

    @staticmethod
    def _addresses(items: Any) -> list[str | None]:
        return [((r or {}).get("emailAddress") or {}).get("address") for r in (items or [])]

    @property
    def subject(self) -> str | None:
        return self.message.get("subject")

    @property
    def to(self) -> list[str | None]:
        return self._addresses(self.message.get("toRecipients"))

    @property
    def cc(self) -> list[str | None]:
        return self._addresses(self.message.get("ccRecipients"))

    @property
    def bcc(self) -> list[str | None]:
        return self._addresses(self.message.get("bccRecipients"))

    @property
    def body_content(self) -> str | None:
        return (self.message.get("body") or {}).get("content")

    @property
    def body_type(self) -> str | None:
        return (self.message.get("body") or {}).get("contentType")

    @property
    def importance(self) -> str | None:
        return self.message.get("importance")


_GRAPH_USER_DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)


class GraphFake(FakeServer):
    """The Microsoft Graph part of ``AzureFake``."""

    def _init_state(self) -> None:
        super()._init_state()
        self._users: dict[str, dict] = {}
        self._sps: dict[str, dict] = {}
        self._mail: list[SentMail] = []

    def add_user(
        self,
        id: str,
        upn: str,
        user_type: str = "Member",
        enabled: bool = True,
        forbidden: bool = False,
        *,
        display_name: str | None = None,
        mail: str | None = None,
        tenant: str | None = None,
        **extra: Any,
    ) -> dict:
        """Seed an Entra ID user. ``forbidden``: PATCH/revoke answer 403 (a privileged admin
        the app may not touch); GET still works. ``tenant`` (issue 11): the user is seen only with a
        token of that tenant (None: the managed identity's own tenant)."""
        data = {
            "id": id,
            "userPrincipalName": upn,
            "displayName": display_name or upn.split("@")[0],
            "givenName": None,
            "surname": None,
            "jobTitle": None,
            "mail": mail if mail is not None else (None if user_type == "Guest" else upn),
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "businessPhones": [],
            "userType": user_type,
            "accountEnabled": enabled,
            **extra,
        }
        with self._lock:
            self._users[id.lower()] = {
                "data": data,
                "forbidden": forbidden,
                "revocations": 0,
                "patches": [],
                "tenant": tenant.lower() if tenant else None,
            }
        return copy.deepcopy(data)

    def add_mailbox(self, address: str) -> dict:
        """A user that can send mail (the MAIL_SENDER mailbox)."""
        return self.add_user(str(uuid.uuid5(uuid.NAMESPACE_DNS, address.lower())), address, mail=address)

    def set_user_forbidden(self, id_or_upn: str, forbidden: bool = True) -> None:
        with self._lock:
            rec = self._find_user(id_or_upn)
            if rec is None:
                raise KeyError(id_or_upn)
            rec["forbidden"] = forbidden

    def get_user(self, id_or_upn: str) -> dict | None:
        """The user's full record (all properties), or None."""
        with self._lock:
            rec = self._find_user(id_or_upn)
            return copy.deepcopy(rec["data"]) if rec else None

    def sign_in_revocations(self, id_or_upn: str) -> int:
        """How many times revokeSignInSessions succeeded for the user."""
        with self._lock:
            rec = self._find_user(id_or_upn)
            return rec["revocations"] if rec else 0

    def add_service_principal(
        self,
        id: str,
        app_id: str,
        display_name: str,
        *,
        enabled: bool = True,
        forbidden: bool = False,
        tenant: str | None = None,
        **extra: Any,
    ) -> dict:
        data = {
            "id": id,
            "appId": app_id,
            "displayName": display_name,
            "accountEnabled": enabled,
            "servicePrincipalType": "Application",
            "appDisplayName": display_name,
            "servicePrincipalNames": [app_id],
            "tags": [],
            **extra,
        }
        with self._lock:
            self._sps[id.lower()] = {
                "data": data,
                "forbidden": forbidden,
                "patches": [],
                "tenant": tenant.lower() if tenant else None,
            }
        return copy.deepcopy(data)

    def get_service_principal(self, id_or_app_id: str) -> dict | None:
        with self._lock:
            rec = self._find_sp(id_or_app_id)
            return copy.deepcopy(rec["data"]) if rec else None

    def sent_mail(self) -> list[SentMail]:
        with self._lock:
            return list(self._mail)

    def _find_user(self, key: str) -> dict | None:
        k = key.lower()
        rec = self._users.get(k)
        if rec is not None:
            return rec
        for rec in self._users.values():
            d = rec["data"]
            if str(d.get("userPrincipalName") or "").lower() == k or str(d.get("mail") or "").lower() == k:
                return rec
        return None

    def _find_sp(self, key: str) -> dict | None:
        k = key.lower()
        rec = self._sps.get(k)
        if rec is not None:
            return rec
        return next((r for r in self._sps.values() if str(r["data"].get("appId", "")).lower() == k), None)

    def _graph_context(self, req: RecordedRequest, what: str) -> str:
        version = req.path.split("/")[1]
        return f"{self.url}/{version}/$metadata#{what}"

    def _graph_answer(self, req: RecordedRequest) -> FakeResponse:
        p = req.path
        m = re.match(r"^/(?:v1\.0|beta)/users/([^/]+)$", p)
        if m:
            return self._graph_user(req, m.group(1))
        m = re.match(r"^/(?:v1\.0|beta)/users/([^/]+)/revokeSignInSessions$", p, re.I)
        if m and req.method == "POST":
            rec = _in_tenant(req, self._find_user(m.group(1)))
            if rec is None:
                return _graph_not_found(m.group(1))
            if rec["forbidden"]:
                return _graph_forbidden()
            rec["revocations"] += 1
            return FakeResponse(200, {"@odata.context": self._graph_context(req, "Edm.Boolean"), "value": True})
        m = re.match(r"^/(?:v1\.0|beta)/users/([^/]+)/sendMail$", p, re.I)
        if m and req.method == "POST":
            return self._graph_send_mail(req, m.group(1))
        m = re.match(r"^/(?:v1\.0|beta)/servicePrincipals(?:/([^/(]+)|\(appId='([^']+)'\))$", p)
        if m:
            return self._graph_sp(req, m.group(1) or m.group(2))
        return _graph_error(
            400,
            "BadRequest",
            f"Resource not found for the segment in '{req.method} {p}' (azure_fake has no such Graph route).",
        )

    def _graph_user(self, req: RecordedRequest, key: str) -> FakeResponse:
        rec = _in_tenant(req, self._find_user(key))
        if rec is None:
            return _graph_not_found(key)
        if req.method == "GET":
            data = rec["data"]
            select = [s.strip() for s in req.query.get("$select", "").split(",") if s.strip()]
            names = select or list(_GRAPH_USER_DEFAULT_PROPERTIES)
            out: dict[str, Any] = {"@odata.context": self._graph_context(req, "users/$entity")}
            for n in names:
                match = next((k for k in data if k.lower() == n.lower()), None)
                out[match or n] = copy.deepcopy(data.get(match)) if match else None
            return FakeResponse(200, out)
        if req.method == "PATCH":
            return self._graph_patch(req, rec)
        return _graph_error(405, "Request_BadRequest", f"{req.method} is not supported on a user in azure_fake.")

    def _graph_sp(self, req: RecordedRequest, key: str) -> FakeResponse:
        rec = _in_tenant(req, self._find_sp(key))
        if rec is None:
            return _graph_not_found(key)
        if req.method == "GET":
            return FakeResponse(
                200,
                {"@odata.context": self._graph_context(req, "servicePrincipals/$entity"), **copy.deepcopy(rec["data"])},
            )
        if req.method == "PATCH":
            return self._graph_patch(req, rec)
        return _graph_error(
            405, "Request_BadRequest", f"{req.method} is not supported on a service principal in azure_fake."
        )

    @staticmethod
    def _graph_patch(req: RecordedRequest, rec: dict) -> FakeResponse:
        """PATCH of a user or service principal: 403 when forbidden, else merge and answer 204 as Graph does."""
        if rec["forbidden"]:
            return _graph_forbidden()
        if not isinstance(req.body, dict):
            return _graph_error(400, "BadRequest", "Empty Payload. JSON content expected.")
        changes = {k: v for k, v in req.body.items() if not k.startswith("@odata")}
        rec["data"].update(copy.deepcopy(changes))
        rec["patches"].append(changes)
        return FakeResponse(204)

    def _graph_send_mail(self, req: RecordedRequest, sender: str) -> FakeResponse:
        if self._find_user(sender) is None:
            return _graph_error(404, "ErrorInvalidUser", f"The requested user '{sender}' is invalid.")
        body = req.body if isinstance(req.body, dict) else {}
        message = body.get("message") or body.get("Message")
        if not isinstance(message, dict):
            return _graph_error(400, "ErrorInvalidRequest", "The message is missing from the request body.")
        recipients = [r for key in ("toRecipients", "ccRecipients", "bccRecipients") for r in message.get(key) or []]
        if not recipients or not all(((r or {}).get("emailAddress") or {}).get("address") for r in recipients):
            return _graph_error(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
        self._mail.append(SentMail(sender, copy.deepcopy(message), body.get("saveToSentItems"), time.time()))
        return FakeResponse(202)


def _in_tenant(req: RecordedRequest, rec: dict | None) -> dict | None:
    """Issue 11: a directory object exists only for a token of its own tenant (else Graph answers 404)."""
    if rec is None or rec.get("tenant") != (req.token_tenant.lower() if req.token_tenant else None):
        return None
    return rec


def _graph_error(status: int, code: str, message: str) -> FakeResponse:
    rid = str(uuid.uuid4())
    return FakeResponse(
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": rid,
                    "client-request-id": rid,
                },
            }
        },
        {"request-id": rid},
    )


def _graph_not_found(key: str) -> FakeResponse:
    return _graph_error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def _graph_forbidden() -> FakeResponse:
    return _graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
