"""Microsoft Graph adapter for identity lockout (msgraph-sdk), behind ``Directory``.

- Users by object id, else by UPN (``GET /users/{id|upn}``, only the fields
  containment needs); ``PATCH /users/{id}`` ``accountEnabled``;
  ``POST /users/{id}/revokeSignInSessions``.
- Service principals by object id, else by ``appId``
  (``/servicePrincipals(appId='…')``); ``PATCH`` ``accountEnabled``.
- Guests are recognised by ``userType`` (and ``#EXT#`` UPNs); a 403 — a
  privileged administrator the app's permission may not touch — becomes
  ``AccessDeniedError``.
- msgraph-sdk is async (httpx): its connection pool belongs to the event loop
  it first runs on. The domain is synchronous (activities and route handlers
  call it from worker threads), so every Graph call of this adapter runs on
  one background event loop owned by this module, whatever thread asks.
- Retries: kiota's RetryHandler retries 429/503/504 (honouring Retry-After)
  with ``CONTAINMENT_RETRY_BACKOFF_SECONDS`` as its base delay; other 5xx,
  transport errors and timeouts become ``TransientError`` for the durable
  activity to retry.
- Tenants (issue 11): a ``GraphDirectory`` acts in one directory (``tenant_id``; None: the SOC's own);
  ``GraphDirectories.for_tenant`` hands out one per tenant, cached, each with its tenant's credential
  (``clients.graph_credential``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shared.containment.ports import DirectoryAccount
from shared.errors import AccessDeniedError, AdapterError, RequestRejectedError, TargetNotFoundError, TransientError
from shared.settings import Settings

T = TypeVar("T")
_USER_FIELDS = ["id", "userPrincipalName", "displayName", "userType", "accountEnabled"]
_SP_FIELDS = ["id", "appId", "displayName", "accountEnabled", "servicePrincipalType"]


def translate(exc: BaseException, what: str) -> AdapterError:
    """A kiota / httpx exception as the domain's error (reason safe to evidence)."""
    if isinstance(exc, AdapterError):
        return exc
    status = getattr(exc, "response_status_code", None)
    if status is not None:
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None)
        message = getattr(error, "message", None) or getattr(exc, "message", None) or type(exc).__name__
        reason = f"{what}: {status} {code or ''} {message}".replace("  ", " ")[:500]
        if status == 404:
            return TargetNotFoundError(reason, status=status, code=code)
        if status == 403:
            return AccessDeniedError(reason, status=status, code=code)
        if status in (408, 409, 412, 429) or status >= 500:
            return TransientError(reason, status=status, code=code)
        return RequestRejectedError(reason, status=status, code=code)
    try:
        import httpx

        transport = isinstance(exc, httpx.HTTPError)
    except ImportError:  # pragma: no cover
        transport = False
    if transport or isinstance(exc, (TimeoutError, ConnectionError, asyncio.TimeoutError)):
        return TransientError(f"{what}: {type(exc).__name__}: {str(exc)[:300]}", code=type(exc).__name__)
    raise exc


class GraphDirectory:
    """Containment's ``Directory`` port on Microsoft Graph v1.0."""

    def __init__(
        self,
        settings: Settings,
        client: Any = None,
        *,
        retries: int = 3,
        backoff_seconds: float | None = None,
        timeout_seconds: float = 30.0,
        tenant_id: str | None = None,
    ):
        """``client``: a ``GraphServiceClient`` (default: built from ``clients.py`` on first use);
        ``tenant_id``: the directory acted in (None: the SOC's own)."""
        self._settings = settings
        self.tenant_id = tenant_id
        self._client = client
        self._retries = retries
        self._backoff = settings.containment_retry_backoff_seconds if backoff_seconds is None else backoff_seconds
        self._timeout = timeout_seconds

    # -- plumbing ------------------------------------------------------------------------
    def _graph(self):
        if self._client is None:
            from shared.adapters.clients import graph_client

            self._client = graph_client(
                self._settings,
                timeout=self._timeout,
                max_retries=self._retries,
                retry_delay=self._backoff,
                tenant_id=self.tenant_id,
            )
        return self._client

    def _run(self, what: str, call: Callable[[Any], Awaitable[T]]) -> T:
        async def guarded() -> T:
            return await call(self._graph())

        from shared.adapters.clients import graph_loop

        future = asyncio.run_coroutine_threadsafe(guarded(), graph_loop())
        try:
            # Bounded even if the service hangs: per-request timeout x attempts, plus the retry delays.
            return future.result(timeout=self._timeout * (self._retries + 1) + 200)
        except Exception as exc:
            future.cancel()
            # Issue 11: a token the partner's tenant refused (consent missing...) says what to fix.
            from shared.adapters.entra_tokens import token_failure

            refused = token_failure(exc, self.tenant_id, self._settings.soc_app_client_id)
            raise (refused or translate(exc, what)) from None

    # -- users ---------------------------------------------------------------------------
    def get_user(self, id_or_upn: str) -> DirectoryAccount:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        config = RequestConfiguration(
            query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=_USER_FIELDS)
        )
        user = self._run(
            f"read account {id_or_upn}", lambda c: c.users.by_user_id(id_or_upn).get(request_configuration=config)
        )
        if user is None:
            raise TargetNotFoundError(f"account {id_or_upn} not found", status=404)
        return DirectoryAccount(
            kind="user",
            id=user.id,
            display_name=user.display_name,
            upn=user.user_principal_name,
            user_type=user.user_type,
            enabled=user.account_enabled,
        )

    def set_user_enabled(self, user_id: str, enabled: bool) -> None:
        from msgraph.generated.models.user import User

        self._run(
            f"{'enable' if enabled else 'disable'} account {user_id}",
            lambda c: c.users.by_user_id(user_id).patch(User(account_enabled=enabled)),
        )

    def revoke_sign_in_sessions(self, user_id: str) -> None:
        result = self._run(
            f"revoke sign-in sessions of {user_id}",
            lambda c: c.users.by_user_id(user_id).revoke_sign_in_sessions.post(),
        )
        if result is not None and getattr(result, "value", True) is False:
            raise TransientError(f"revoke sign-in sessions of {user_id}: Graph answered false")

    # -- service principals --------------------------------------------------------------
    def get_service_principal(self, object_id: str | None = None, app_id: str | None = None) -> DirectoryAccount:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
            ServicePrincipalItemRequestBuilder,
        )

        if not (object_id or app_id):
            raise RequestRejectedError("a service principal needs an object id or an app id", code="NoIdentifier")
        params_cls = ServicePrincipalItemRequestBuilder.ServicePrincipalItemRequestBuilderGetQueryParameters
        config = RequestConfiguration(query_parameters=params_cls(select=_SP_FIELDS))
        if object_id:
            sp = self._run(
                f"read service principal {object_id}",
                lambda c: c.service_principals.by_service_principal_id(object_id).get(request_configuration=config),
            )
        else:
            from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
                ServicePrincipalsWithAppIdRequestBuilder,
            )

            by_app = ServicePrincipalsWithAppIdRequestBuilder
            app_config = RequestConfiguration(
                query_parameters=by_app.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters(select=_SP_FIELDS)
            )
            sp = self._run(
                f"read service principal appId {app_id}",
                lambda c: c.service_principals_with_app_id(app_id).get(request_configuration=app_config),
            )
        if sp is None:
            raise TargetNotFoundError(f"service principal {object_id or app_id} not found", status=404)
        return DirectoryAccount(
            kind="servicePrincipal",
            id=sp.id,
            display_name=sp.display_name,
            app_id=sp.app_id,
            enabled=sp.account_enabled,
        )

    def set_service_principal_enabled(self, sp_id: str, enabled: bool) -> None:
        from msgraph.generated.models.service_principal import ServicePrincipal

        self._run(
            f"{'enable' if enabled else 'disable'} service principal {sp_id}",
            lambda c: c.service_principals.by_service_principal_id(sp_id).patch(
                ServicePrincipal(account_enabled=enabled)
            ),
        )


class GraphDirectories:
    """Containment's ``Directories`` port (issue 11): one ``GraphDirectory`` per tenant, built on first use."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._by_tenant: dict[str | None, GraphDirectory] = {}

    def for_tenant(self, tenant_id: str | None) -> GraphDirectory:
        from shared.adapters.clients import app_tenant

        # Every tenant the managed identity serves directly shares one directory (and client).
        key = app_tenant(self._settings, tenant_id)
        with self._lock:
            directory = self._by_tenant.get(key)
            if directory is None:
                directory = self._by_tenant[key] = GraphDirectory(self._settings, tenant_id=key)
            return directory
