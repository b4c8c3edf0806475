"""Factories for the real Azure SDK clients, built from ``Settings``.

Nothing here imports an Azure SDK at module import time: each factory
imports its SDK when first called, so unit tests and cold starts of
functions that never touch a service stay light.

Caching (Functions runs sync functions on a thread pool, async ones on one
event loop):

- ``credential()`` is one process-wide ``DefaultAzureCredential`` (it reads
  ``AZURE_CLIENT_ID`` for a user-assigned managed identity itself).
- The sync clients (ARM network/compute, the bare ARM pipeline, Log Analytics, ACS, Tables) are
  cached per process under a lock, keyed by endpoint (and subscription);
  azure-core sync clients are safe to share between threads.
- The Graph client is async (httpx): its connection pool belongs to the event
  loop it first runs on, so it is cached per running event loop, and built
  fresh (uncached) when no loop is running.
- Passing keyword arguments (``retry_total=``, ``read_timeout=``,
  ``polling_interval=``, ``timeout=``...) builds a fresh, uncached client.

Retries and timeouts: azure-core's own defaults (10 retries with back-off up
to 120 s, 300 s read timeout) could keep a containment step busy for many
minutes before its failure is escalated, so the azure-core clients get
``DEFAULT_CLIENT_KWARGS`` (4 retries, back-off capped at 30 s, 10 s connect /
60 s read timeout) unless the caller passes its own; Retry-After is always
honoured. ``set_client_defaults(...)`` overrides them process-wide (tests:
``retry_backoff_factor=0.01``, a short ``read_timeout``).

Tenants (issue 11, docs/spec/tenancy.md): ``graph_credential(settings, tenant)`` is the managed identity
for the SOC's own tenant (``SOC_TENANT_ID``, no tenant, or no ``SOC_APP_CLIENT_ID``: a single-tenant SOC),
else one ``ClientAssertionCredential`` per partner tenant, cached like the clients: the SOC's multi-tenant
app signs in to that tenant with the managed identity's token for ``api://AzureADTokenExchange`` as its
client assertion (no secret), from ``AZURE_AUTHORITY_HOST``. Each credential keeps its own token cache
(MSAL), so a warm tenant costs no token round trip. ARM (Lighthouse), mail and calls stay on the managed
identity.

``reset_clients()`` drops every cached client and the credential (tests use
it when they point the environment somewhere else).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from shared.errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover - types only
    from azure.communication.callautomation import CallAutomationClient
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableServiceClient
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.monitor.query import LogsQueryClient
    from msgraph import GraphServiceClient

    from shared.settings import Settings

__all__ = [
    "DEFAULT_CLIENT_KWARGS",
    "arm_pipeline_client",
    "call_automation_client",
    "compute_client",
    "credential",
    "graph_client",
    "graph_credential",
    "graph_loop",
    "logs_client",
    "network_client",
    "reset_clients",
    "set_client_defaults",
    "table_service",
]

T = TypeVar("T")

_lock = threading.RLock()
_credential: DefaultAzureCredential | None = None
_cache: dict[tuple, Any] = {}
_graph_cache: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, Any]] = weakref.WeakKeyDictionary()

#: Keyword arguments every azure-core client (ARM, Log Analytics, ACS, Tables) is built with
#: unless the caller passes its own (azure-core RetryPolicy and transport settings).
DEFAULT_CLIENT_KWARGS = MappingProxyType(
    {
        "retry_total": 4,
        "retry_backoff_factor": 0.8,
        "retry_backoff_max": 30,
        "connection_timeout": 10,
        "read_timeout": 60,
    }
)
_default_overrides: dict[str, Any] = {}


def set_client_defaults(**overrides: Any) -> None:
    """Override ``DEFAULT_CLIENT_KWARGS`` for every client built from now on (no arguments:
    back to the built-in defaults). Cached clients are dropped."""
    with _lock:
        _default_overrides.clear()
        _default_overrides.update(overrides)
    reset_clients()


def _with_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    with _lock:
        return {**DEFAULT_CLIENT_KWARGS, **_default_overrides, **kwargs}


def credential() -> TokenCredential:
    """The process-wide ``DefaultAzureCredential`` (managed identity in Azure;
    ``AZURE_CLIENT_ID`` selects a user-assigned identity)."""
    global _credential
    with _lock:
        if _credential is None:
            from azure.identity import DefaultAzureCredential

            _credential = DefaultAzureCredential()
        return _credential


# -- issue 11: per-tenant Graph credentials --------------------------------------------------
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"


def app_tenant(settings: Settings, tenant_id: str | None) -> str | None:
    """The partner tenant Graph must get an app token for, or None: the managed identity's own tenant."""
    tenant = (tenant_id or "").strip().lower()
    if not tenant or not settings.soc_app_client_id or tenant == (settings.soc_tenant_id or ""):
        return None
    return tenant


def graph_credential(settings: Settings, tenant_id: str | None = None) -> TokenCredential:
    """The credential for Graph in ``tenant_id``: the managed identity in the SOC's own tenant, else the
    SOC app's ``ClientAssertionCredential`` for that tenant (one per tenant, cached, thread-safe)."""
    tenant = app_tenant(settings, tenant_id)
    if tenant is None:
        return credential()
    client_id = settings.soc_app_client_id
    assert client_id is not None  # app_tenant checked it
    key = ("tenant-credential", settings.azure_authority_host, client_id, tenant)
    with _lock:
        cred = _cache.get(key)
        if cred is None:
            from azure.identity import ClientAssertionCredential

            def assertion() -> str:
                # The managed identity's token for the token exchange (cached by that credential too).
                return credential().get_token(TOKEN_EXCHANGE_SCOPE).token

            retry = {k: v for k, v in _with_defaults({}).items() if k.startswith("retry_")}
            cred = _cache[key] = ClientAssertionCredential(
                tenant, client_id, assertion, authority=settings.azure_authority_host, **retry
            )
        return cred


def _cached(key: tuple, build: Callable[[], T], kwargs: dict[str, Any]) -> T:
    if kwargs:
        return build()
    with _lock:
        client = _cache.get(key)
        if client is None:
            client = _cache[key] = build()
        return client


def _scope(endpoint: str) -> str:
    return endpoint.rstrip("/") + "/.default"


def network_client(settings: Settings, subscription_id: str, **kwargs: Any) -> NetworkManagementClient:
    """``NetworkManagementClient`` for ``subscription_id`` at ``ARM_ENDPOINT``."""

    def build() -> NetworkManagementClient:
        from azure.mgmt.network import NetworkManagementClient

        return NetworkManagementClient(
            credential(),
            subscription_id,
            base_url=settings.arm_endpoint,
            credential_scopes=[_scope(settings.arm_endpoint)],
            **_with_defaults(kwargs),
        )

    return _cached(("network", settings.arm_endpoint, subscription_id.lower()), build, kwargs)


def compute_client(settings: Settings, subscription_id: str, **kwargs: Any) -> ComputeManagementClient:
    """``ComputeManagementClient`` for ``subscription_id`` at ``ARM_ENDPOINT``."""

    def build() -> ComputeManagementClient:
        from azure.mgmt.compute import ComputeManagementClient

        return ComputeManagementClient(
            credential(),
            subscription_id,
            base_url=settings.arm_endpoint,
            credential_scopes=[_scope(settings.arm_endpoint)],
            **_with_defaults(kwargs),
        )

    return _cached(("compute", settings.arm_endpoint, subscription_id.lower()), build, kwargs)


def arm_pipeline_client(settings: Settings, **kwargs: Any) -> ARMPipelineClient:
    """azure-mgmt-core's ``ARMPipelineClient`` at ``ARM_ENDPOINT``: the management pipeline the generated
    SDKs use (bearer token for ``<ARM_ENDPOINT>/.default`` with ARM's claims challenge, retries with
    Retry-After, request ids, ARM logging), for REST calls at an API version no pinned SDK covers
    (Sentinel incidents, Defender for Cloud alert state)."""

    def build() -> ARMPipelineClient:
        from azure.core.configuration import Configuration
        from azure.core.pipeline import policies
        from azure.mgmt.core import ARMPipelineClient
        from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

        options = _with_defaults(kwargs)
        config: Configuration = Configuration(**options)
        config.headers_policy = policies.HeadersPolicy(**options)
        config.user_agent_policy = policies.UserAgentPolicy(sdk_moniker="soc-responder", **options)
        config.proxy_policy = policies.ProxyPolicy(**options)
        config.redirect_policy = policies.RedirectPolicy(**options)
        config.retry_policy = policies.RetryPolicy(**options)
        config.authentication_policy = ARMChallengeAuthenticationPolicy(
            credential(), _scope(settings.arm_endpoint), **options
        )
        config.custom_hook_policy = policies.CustomHookPolicy(**options)
        config.logging_policy = policies.NetworkTraceLoggingPolicy(**options)
        config.http_logging_policy = ARMHttpLoggingPolicy(**options)
        return ARMPipelineClient(base_url=settings.arm_endpoint, config=config, **options)

    return _cached(("arm-pipeline", settings.arm_endpoint), build, kwargs)


def logs_client(settings: Settings, **kwargs: Any) -> LogsQueryClient:
    """``LogsQueryClient`` at ``LOG_ANALYTICS_ENDPOINT`` (token audience = that endpoint)."""

    def build() -> LogsQueryClient:
        from azure.monitor.query import LogsQueryClient

        return LogsQueryClient(
            credential(),
            endpoint=settings.log_analytics_endpoint,
            audience=settings.log_analytics_endpoint,
            **_with_defaults(kwargs),
        )

    return _cached(("logs", settings.log_analytics_endpoint), build, kwargs)


def call_automation_client(settings: Settings, **kwargs: Any) -> CallAutomationClient:
    """ACS ``CallAutomationClient`` at ``ACS_ENDPOINT`` with the managed identity
    (the SDK asks for a ``https://communication.azure.com//.default`` token)."""
    endpoint = settings.acs_endpoint
    if not endpoint:
        raise ConfigurationError("ACS_ENDPOINT is not set: calls are disabled")

    def build() -> CallAutomationClient:
        from azure.communication.callautomation import CallAutomationClient

        return CallAutomationClient(endpoint, credential(), **_with_defaults(kwargs))

    return _cached(("acs", endpoint), build, kwargs)


def table_service(settings: Settings, **kwargs: Any) -> TableServiceClient:
    """``TableServiceClient`` from the ``EvidenceStorage`` connection string, else from
    ``EvidenceStorage__tableServiceUri`` with the managed identity."""
    conn = settings.evidence_connection_string
    # The connection string wins; without one, this is the table service URI.
    where = conn or settings.evidence_table_service_uri
    if not where:
        raise ConfigurationError(
            "EvidenceStorage or EvidenceStorage__tableServiceUri must be set for the evidence tables"
        )

    def build() -> TableServiceClient:
        from azure.data.tables import TableServiceClient

        if conn:
            return TableServiceClient.from_connection_string(conn, **_with_defaults(kwargs))
        return TableServiceClient(endpoint=where, credential=credential(), **_with_defaults(kwargs))

    return _cached(("tables", where), build, kwargs)


def graph_client(
    settings: Settings,
    *,
    timeout: float | None = None,
    max_retries: int | None = None,
    retry_delay: float | None = None,
    tenant_id: str | None = None,
) -> GraphServiceClient:
    """``GraphServiceClient`` at ``<GRAPH_ENDPOINT>/v1.0``.

    The token scope is ``<GRAPH_ENDPOINT>/.default`` and the authentication
    provider allows exactly the GRAPH_ENDPOINT host (kiota sends requests to
    any other host without a token, silently). ``timeout`` (seconds, default
    kiota's 100 s read / 30 s connect), ``max_retries`` and ``retry_delay``
    (kiota's retry handler: 429/503/504 only) build an uncached client. ``tenant_id`` (issue 11): the
    directory to act in (``graph_credential``); the SOC's own by default.
    """
    custom = timeout is not None or max_retries is not None or retry_delay is not None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if custom or loop is None:
        return _build_graph(settings, timeout, max_retries, retry_delay, tenant_id)
    key = ("graph", settings.graph_endpoint, app_tenant(settings, tenant_id))
    with _lock:
        per_loop = _graph_cache.setdefault(loop, {})
        client = per_loop.get(key)
        if client is None:
            client = per_loop[key] = _build_graph(settings, None, None, None, tenant_id)
        return client


def _build_graph(
    settings: Settings,
    timeout: float | None,
    max_retries: int | None,
    retry_delay: float | None,
    tenant_id: str | None = None,
) -> GraphServiceClient:
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider

    endpoint = settings.graph_endpoint.rstrip("/")
    host = urlsplit(endpoint).hostname
    if not host:
        raise ConfigurationError(f"GRAPH_ENDPOINT is not a URL: {endpoint!r}")
    auth = AzureIdentityAuthenticationProvider(
        graph_credential(settings, tenant_id), scopes=[_scope(endpoint)], allowed_hosts=[host]
    )
    http_client = None
    if timeout is not None or max_retries is not None or retry_delay is not None:
        import httpx
        from kiota_http.kiota_client_factory import KiotaClientFactory
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph.graph_request_adapter import options as graph_options
        from msgraph_core import GraphClientFactory

        options = dict(graph_options)
        if max_retries is not None or retry_delay is not None:
            defaults = RetryHandlerOption()
            option = RetryHandlerOption(
                delay=defaults.max_delay if retry_delay is None else retry_delay,
                max_retries=defaults.max_retry if max_retries is None else max_retries,
            )
            options[RetryHandlerOption.get_key()] = option
        base = KiotaClientFactory.get_default_client()
        if timeout is not None:
            base.timeout = httpx.Timeout(timeout)
        http_client = GraphClientFactory.create_with_default_middleware(client=base, options=options)
    adapter = GraphRequestAdapter(auth, client=http_client)
    # Before constructing the client: it copies base_url into its path parameters.
    adapter.base_url = f"{endpoint}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


class _GraphLoop:
    """One daemon thread running the event loop that every Graph call of this process uses.

    msgraph-sdk is async and httpx ties a client's connection pool to one loop: sync callers
    (activities run on worker threads) submit their coroutines here, so the cached Graph client
    and its connections are shared by the directory and mail adapters.
    """

    _instance: _GraphLoop | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        threading.Thread(target=run, name="graph-loop", daemon=True).start()
        ready.wait()

    @classmethod
    def get(cls) -> _GraphLoop:
        with cls._lock:
            if cls._instance is None or cls._instance.loop.is_closed():
                cls._instance = _GraphLoop()
            return cls._instance


def graph_loop() -> asyncio.AbstractEventLoop:
    """The process's Graph event loop (started on first use)."""
    return _GraphLoop.get().loop


def reset_clients() -> None:
    """Close and forget every cached client and the credential."""
    global _credential
    with _lock:
        clients = list(_cache.values())
        _cache.clear()
        _graph_cache.clear()
        cred, _credential = _credential, None
    for client in clients:
        close = getattr(client, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                pass
    if cred is not None:
        try:
            cred.close()
        except Exception:
            pass
