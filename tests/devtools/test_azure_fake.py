"""The real SDK clients, built by shared.adapters.clients with the real
DefaultAzureCredential (fed by the fake's managed-identity endpoint), work
against devtools.fakes and Azurite — and the fake's own contract
(request log, faults, ARM store semantics) holds.

Retries stay fast: azure-core's first retry has no back-off and honours
Retry-After (injected values are 0-1 s); tests that retry more than once
build their client with ``retry_backoff_factor=0.01``; read timeouts use a
short ``read_timeout`` against an injected delay of about a second.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from devtools.fakes import ACS_AUDIENCE, AzureFake, FakeResponse, json_diff
from shared.adapters import clients
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"  # the repository's copy: nothing reads ../shared at run time
SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-app"
FAST = {"retry_backoff_factor": 0.01}


def nsg_id(name: str, rg: str = RG) -> str:
    return f"{rg}/providers/Microsoft.Network/networkSecurityGroups/{name}"


def nic_id(name: str, rg: str = RG) -> str:
    return f"{rg}/providers/Microsoft.Network/networkInterfaces/{name}"


def vm_id(name: str, rg: str = RG) -> str:
    return f"{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


@pytest.fixture
def settings(fake_env: dict[str, str]) -> Settings:
    return Settings.from_env()


def raw(fake: AzureFake, method: str, path: str, body=None, *, resource: str | None = None) -> requests.Response:
    """A plain HTTPS request to the fake with a token it issued (no SDK)."""
    token = fake.identity.issue_token(resource or fake.url).token
    return requests.request(
        method,
        fake.url + path,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=fake.ca_pem_path,
        timeout=10,
    )


# ---------------------------------------------------------------------------- adapters module


def test_importing_clients_module_imports_no_azure_sdk() -> None:
    code = (
        "import sys; import shared.adapters.clients\n"
        "bad = [m for m in sys.modules if m.startswith(('azure.mgmt', 'msgraph', 'azure.monitor', "
        "'azure.communication', 'azure.data', 'azure.identity', 'kiota'))]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_sync_clients_are_cached_once_per_process_across_threads(settings: Settings) -> None:
    got: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        got.append(clients.network_client(settings, SUB))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(c is got[0] for c in got)
    assert clients.network_client(settings, SUB.upper()) is got[0]
    assert clients.network_client(settings, SUB, retry_total=1) is not got[0]  # kwargs: fresh client
    assert clients.logs_client(settings) is clients.logs_client(settings)
    assert clients.credential() is clients.credential()


def test_graph_client_is_cached_per_event_loop(settings: Settings) -> None:
    async def two() -> tuple[object, object]:
        return clients.graph_client(settings), clients.graph_client(settings)

    a1, a2 = asyncio.run(two())
    b1, _ = asyncio.run(two())
    assert a1 is a2
    assert b1 is not a1  # a new loop gets its own httpx pool
    assert clients.graph_client(settings) is not clients.graph_client(settings)  # no loop: uncached


def test_azure_core_clients_get_bounded_retries_and_timeouts(settings: Settings) -> None:
    def retry_and_timeouts(pipeline_client) -> tuple:
        [retry] = [p for p in pipeline_client._pipeline._impl_policies if "Retry" in type(p).__name__]
        config = pipeline_client._pipeline._transport.connection_config
        return retry.total_retries, retry.backoff_factor, retry.backoff_max, config.timeout, config.read_timeout

    clients.set_client_defaults()  # the shipped defaults, not the test fixture's
    assert retry_and_timeouts(clients.network_client(settings, SUB)._client) == (4, 0.8, 30, 10, 60)
    assert retry_and_timeouts(clients.logs_client(settings, retry_total=2)._client) == (2, 0.8, 30, 10, 60)
    clients.set_client_defaults(read_timeout=5, retry_backoff_factor=0.01)
    assert retry_and_timeouts(clients.compute_client(settings, SUB)._client) == (4, 0.01, 30, 10, 5)


def test_missing_settings_are_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.errors import ConfigurationError

    s = Settings.from_env({})
    with pytest.raises(ConfigurationError, match="ACS_ENDPOINT"):
        clients.call_automation_client(s)
    with pytest.raises(ConfigurationError, match="EvidenceStorage"):
        clients.table_service(s)


# ---------------------------------------------------------------------------- managed identity


def test_identity_endpoint_speaks_app_service_protocol(fake: AzureFake) -> None:
    url = fake.identity.url
    assert (
        requests.get(url, params={"api-version": "2019-08-01", "resource": "https://x"}, timeout=5).status_code == 401
    )
    ok = requests.get(
        url,
        params={"api-version": "2019-08-01", "resource": "https://x", "client_id": "abc"},
        headers={"X-IDENTITY-HEADER": fake.identity.header_secret},
        timeout=5,
    )
    assert ok.status_code == 200
    body = ok.json()
    assert set(body) >= {"access_token", "expires_on", "resource", "token_type"}
    assert int(body["expires_on"]) > time.time() + 3000
    assert fake.token_requests()[-1].resource == "https://x" and fake.token_requests()[-1].client_id == "abc"
    assert [r.status for r in fake.requests(api="token")] == [401, 200]


def test_default_credential_uses_the_identity_endpoint_and_azure_client_id(
    settings: Settings, fake: AzureFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "5d1f0c3e-0000-4000-8000-000000000001")
    clients.reset_clients()
    token = clients.credential().get_token(f"{settings.arm_endpoint}/.default")
    grant = fake.identity.grant_for(token.token)
    assert grant is not None and grant.resource == settings.arm_endpoint
    assert grant.client_id == "5d1f0c3e-0000-4000-8000-000000000001"


def test_fake_rejects_requests_without_a_token_or_for_another_audience(fake: AzureFake) -> None:
    fake.add_nsg(nsg_id("nsg-a"), "westeurope")
    anonymous = requests.get(fake.url + nsg_id("nsg-a"), verify=fake.ca_pem_path, timeout=5)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "AuthenticationFailed"
    wrong = raw(fake, "GET", nsg_id("nsg-a"), resource="https://management.azure.com")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    assert raw(fake, "GET", nsg_id("nsg-a")).status_code == 200


# ---------------------------------------------------------------------------- ARM: network


def test_nsg_get_missing_is_resource_not_found_and_carries_the_token(settings: Settings, fake: AzureFake) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    client = clients.network_client(settings, SUB)
    with pytest.raises(ResourceNotFoundError) as err:
        client.network_security_groups.get("rg-app", "nope")
    assert err.value.error.code == "ResourceNotFound"
    req = fake.last_request("GET", "networkSecurityGroups/nope")
    assert req.header("Authorization", "").startswith("Bearer fake-mi.")
    assert req.token_resource == settings.arm_endpoint
    assert settings.arm_endpoint in fake.identity.resources_requested()


def test_nsg_create_with_long_running_operation_polls_until_succeeded(settings: Settings, fake: AzureFake) -> None:
    from azure.mgmt.network.models import (
        NetworkSecurityGroup,
        NetworkSecurityGroupPropertiesFormat,
        SecurityRule,
        SecurityRulePropertiesFormat,
    )

    fake.set_lro("Microsoft.Network/networkSecurityGroups", polls=2)
    deny = SecurityRule(
        name="soc-deny-all-in",
        properties=SecurityRulePropertiesFormat(
            protocol="*",
            source_address_prefix="*",
            destination_address_prefix="*",
            source_port_range="*",
            destination_port_range="*",
            access="Deny",
            direction="Inbound",
            priority=100,
        ),
    )
    nsg = NetworkSecurityGroup(
        location="westeurope",
        tags={"soc": "quarantine"},
        properties=NetworkSecurityGroupPropertiesFormat(security_rules=[deny]),
    )
    client = clients.network_client(settings, SUB)
    started = time.monotonic()
    result = client.network_security_groups.begin_create_or_update(
        "rg-soc-quarantine", "nsg-q-westeurope", nsg
    ).result()
    assert time.monotonic() - started < 5
    assert result.properties.provisioning_state == "Succeeded"
    assert result.properties.security_rules[0].id.endswith("/securityRules/soc-deny-all-in")
    assert {r.name for r in result.properties.default_security_rules} >= {"DenyAllInBound", "AllowVnetInBound"}
    calls = [(r.method, r.status, "operations/" in r.path) for r in fake.requests()]
    assert calls == [
        ("PUT", 201, False),
        ("GET", 200, True),
        ("GET", 200, True),
        ("GET", 200, True),
        ("GET", 200, False),
    ]
    stored = fake.get_resource(nsg_id("nsg-q-westeurope", f"/subscriptions/{SUB}/resourceGroups/rg-soc-quarantine"))
    assert stored["properties"]["securityRules"][0]["properties"]["access"] == "Deny"


def test_failed_long_running_operation_raises(settings: Settings, fake: AzureFake) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.network.models import NetworkSecurityGroup

    fake.set_lro(
        "Microsoft.Network/networkSecurityGroups", polls=0, fail={"code": "InternalServerError", "message": "boom"}
    )
    client = clients.network_client(settings, SUB)
    with pytest.raises(HttpResponseError, match="boom"):
        client.network_security_groups.begin_create_or_update(
            "rg-app", "nsg-x", NetworkSecurityGroup(location="westeurope")
        ).result()
    assert fake.get_resource(nsg_id("nsg-x"))["properties"]["provisioningState"] == "Failed"


def test_nic_update_attaches_nsg_and_changes_nothing_else(settings: Settings, fake: AzureFake) -> None:
    from azure.mgmt.network.models import NetworkSecurityGroup

    fake.add_nsg(nsg_id("nsg-app"), "westeurope")
    fake.add_nsg(nsg_id("nsg-q"), "westeurope")
    fake.add_nic(
        nic_id("nic-1"),
        "westeurope",
        nsg_id=nsg_id("nsg-app"),
        tags={"owner": "app"},
        ip_configurations=[
            {},
            {
                "name": "secondary",
                "private_ip": "10.0.9.9",
                "public_ip_id": f"{RG}/providers/Microsoft.Network/publicIPAddresses/pip-1",
            },
        ],
    )
    fake.add_vm(vm_id("vm-1"), "westeurope", [nic_id("nic-1")])
    before = fake.get_resource(nic_id("nic-1"))

    client = clients.network_client(settings, SUB)
    nic = client.network_interfaces.get("rg-app", "nic-1")
    previous = nic.properties.network_security_group.id
    nic.properties.network_security_group = NetworkSecurityGroup(id=nsg_id("nsg-q"))
    updated = client.network_interfaces.begin_create_or_update("rg-app", "nic-1", nic).result()

    assert previous.lower() == nsg_id("nsg-app").lower()
    assert updated.properties.network_security_group.id == nsg_id("nsg-q")
    after = fake.get_resource(nic_id("nic-1"))
    assert json_diff(before, after) == ["properties.networkSecurityGroup.id"]
    sent = fake.last_request("PUT", "networkInterfaces/nic-1").body
    assert [c["properties"]["privateIPAddress"] for c in sent["properties"]["ipConfigurations"]] == [
        c["properties"]["privateIPAddress"] for c in before["properties"]["ipConfigurations"]
    ]
    assert "macAddress" not in sent["properties"]  # read-only: the SDK leaves it out, ARM keeps it
    quarantined = client.network_security_groups.get("rg-app", "nsg-q")
    assert [n.id for n in quarantined.properties.network_interfaces] == [nic_id("nic-1")]
    assert len(fake.resource_history(nic_id("nic-1"))) == 3  # seed, VM back-reference, update


def test_nic_cannot_reference_an_nsg_in_another_region(settings: Settings, fake: AzureFake) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.network.models import NetworkSecurityGroup

    fake.add_nsg(nsg_id("nsg-q-eastus"), "eastus")
    fake.add_nic(nic_id("nic-2"), "West Europe")
    client = clients.network_client(settings, SUB)
    nic = client.network_interfaces.get("rg-app", "nic-2")
    nic.properties.network_security_group = NetworkSecurityGroup(id=nsg_id("nsg-q-eastus"))
    with pytest.raises(HttpResponseError) as err:
        client.network_interfaces.begin_create_or_update("rg-app", "nic-2", nic).result()
    assert err.value.status_code == 400 and err.value.error.code == "InvalidResourceReference"
    assert "networkSecurityGroup" not in fake.get_resource(nic_id("nic-2"))["properties"]


def test_list_by_resource_group_ids_ignore_case_patch_and_delete(settings: Settings, fake: AzureFake) -> None:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.mgmt.network.models import TagsObject

    fake.add_nic(nic_id("nic-a"), "westeurope")
    fake.add_nic(nic_id("nic-b"), "westeurope")
    fake.add_nic(nic_id("nic-c", f"/subscriptions/{SUB}/resourceGroups/rg-other"), "westeurope")
    fake.add_nsg(nsg_id("nsg-1"), "westeurope")
    client = clients.network_client(settings, SUB)
    assert sorted(n.name for n in client.network_interfaces.list("rg-app")) == ["nic-a", "nic-b"]
    assert sorted(n.name for n in client.network_interfaces.list_all()) == ["nic-a", "nic-b", "nic-c"]
    assert [n.name for n in client.network_security_groups.list("RG-APP")] == ["nsg-1"]
    assert client.network_interfaces.get("RG-App", "NIC-A").id == nic_id("nic-a")  # stored id keeps its case

    tagged = client.network_security_groups.update_tags("rg-app", "nsg-1", TagsObject(tags={"soc": "q"}))
    assert tagged.tags == {"soc": "q"}
    client.network_security_groups.begin_delete("rg-app", "nsg-1").result()
    with pytest.raises(ResourceNotFoundError):
        client.network_security_groups.get("rg-app", "nsg-1")


# ---------------------------------------------------------------------------- ARM: compute, Sentinel, Defender


def test_compute_vm_get_lists_its_nics_and_tags(settings: Settings, fake: AzureFake) -> None:
    fake.add_nic(nic_id("dc-nic-0"), "westeurope")
    fake.add_nic(nic_id("dc-nic-1"), "westeurope")
    fake.add_vm(
        vm_id("dc-01"),
        "westeurope",
        [nic_id("dc-nic-0"), nic_id("dc-nic-1")],
        tags={"soc-isolation": "approval"},
        os_type="Windows",
    )
    vm = clients.compute_client(settings, SUB).virtual_machines.get("rg-app", "dc-01")
    assert [n.id for n in vm.properties.network_profile.network_interfaces] == [nic_id("dc-nic-0"), nic_id("dc-nic-1")]
    assert vm.tags == {"soc-isolation": "approval"} and vm.location == "westeurope"
    assert fake.get_resource(nic_id("dc-nic-1"))["properties"]["virtualMachine"]["id"] == vm_id("dc-01")


def test_sentinel_incidents_comments_and_defender_alert_actions_are_generic(fake: AzureFake) -> None:
    ws = f"{RG}/providers/Microsoft.OperationalInsights/workspaces/ws-soc/providers/Microsoft.SecurityInsights"
    put = raw(
        fake,
        "PUT",
        f"{ws}/incidents/inc-1?api-version=2024-03-01",
        {"properties": {"title": "Crypto miner", "severity": "High", "status": "Active"}},
    )
    assert put.status_code == 201 and put.json()["properties"]["provisioningState"] == "Succeeded"
    assert put.json()["type"] == "Microsoft.SecurityInsights/incidents" and put.json()["etag"]
    comment = raw(
        fake,
        "PUT",
        f"{ws}/incidents/inc-1/comments/c-1?api-version=2024-03-01",
        {"properties": {"message": "contained"}},
    )
    assert comment.status_code == 201
    assert raw(fake, "GET", f"{ws}/incidents/inc-1/comments").json()["value"][0]["properties"]["message"] == "contained"
    dismiss = raw(
        fake,
        "POST",
        f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Security/locations/westeurope/alerts/2517-abc/resolve?api-version=2022-01-01",
    )
    assert dismiss.status_code == 204
    assert [r.method for r in fake.writes()] == ["PUT", "PUT", "POST"]
    missing = raw(fake, "GET", f"{ws}/incidents/inc-404")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


# ---------------------------------------------------------------------------- Graph


def test_graph_containment_and_mail_send_tokens_to_the_graph_endpoint(settings: Settings, fake: AzureFake) -> None:
    from msgraph.generated.models.body_type import BodyType
    from msgraph.generated.models.email_address import EmailAddress
    from msgraph.generated.models.item_body import ItemBody
    from msgraph.generated.models.message import Message
    from msgraph.generated.models.recipient import Recipient
    from msgraph.generated.models.service_principal import ServicePrincipal
    from msgraph.generated.models.user import User
    from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

    fake.add_user("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "svc-deploy@contoso.example")
    fake.add_service_principal("sp-1", "app-1", "deploy-bot")
    fake.add_mailbox("soc-alerts@contoso.example")

    async def contain_and_notify() -> bool | None:
        graph = clients.graph_client(settings)
        user = graph.users.by_user_id("svc-deploy@contoso.example")
        await user.patch(User(account_enabled=False))
        revoked = await user.revoke_sign_in_sessions.post()
        await graph.service_principals.by_service_principal_id("sp-1").patch(ServicePrincipal(account_enabled=False))
        mail = Message(
            subject="[P1] contained",
            body=ItemBody(content_type=BodyType.Text, content="VM isolated"),
            to_recipients=[Recipient(email_address=EmailAddress(address="soc@partner.example"))],
        )
        await graph.users.by_user_id("soc-alerts@contoso.example").send_mail.post(
            SendMailPostRequestBody(message=mail, save_to_sent_items=False)
        )
        return revoked.value

    assert asyncio.run(contain_and_notify()) is True
    assert fake.get_user("svc-deploy@contoso.example")["accountEnabled"] is False
    assert fake.sign_in_revocations("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d") == 1
    assert fake.get_service_principal("app-1")["accountEnabled"] is False
    [sent] = fake.sent_mail()
    assert (sent.sender, sent.subject, sent.to, sent.body_content) == (
        "soc-alerts@contoso.example",
        "[P1] contained",
        ["soc@partner.example"],
        "VM isolated",
    )
    graph_requests = fake.requests(api="graph")
    assert [(r.method, r.status) for r in graph_requests] == [
        ("PATCH", 204),
        ("POST", 200),
        ("PATCH", 204),
        ("POST", 202),
    ]
    for r in graph_requests:
        assert r.header("Authorization", "").startswith("Bearer fake-mi.")
        assert r.token_resource == settings.graph_endpoint
    assert graph_requests[0].path == "/v1.0/users/svc-deploy@contoso.example"


def test_graph_user_get_hides_account_enabled_unless_selected(settings: Settings, fake: AzureFake) -> None:
    from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

    fake.add_user("u-guest", "guest_partner.example#EXT#@contoso.example", user_type="Guest", enabled=True)

    async def read() -> tuple:
        user = clients.graph_client(settings).users.by_user_id("u-guest")
        plain = await user.get()
        config = UserItemRequestBuilder.UserItemRequestBuilderGetRequestConfiguration(
            query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
                select=["id", "accountEnabled", "userType"]
            )
        )
        selected = await user.get(request_configuration=config)
        return plain, selected

    plain, selected = asyncio.run(read())
    assert plain.account_enabled is None and plain.user_principal_name.startswith("guest_")
    assert (selected.account_enabled, selected.user_type) == (True, "Guest")


def test_graph_unknown_and_forbidden_users_raise_odata_errors(settings: Settings, fake: AzureFake) -> None:
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.user import User

    fake.add_user("u-admin", "breakglass@contoso.example", forbidden=True)

    async def patch(user_id: str) -> None:
        await clients.graph_client(settings).users.by_user_id(user_id).patch(User(account_enabled=False))

    with pytest.raises(ODataError) as missing:
        asyncio.run(patch("u-missing"))
    assert missing.value.response_status_code == 404 and missing.value.error.code == "Request_ResourceNotFound"
    with pytest.raises(ODataError) as denied:
        asyncio.run(patch("u-admin"))
    assert denied.value.response_status_code == 403 and denied.value.error.code == "Authorization_RequestDenied"
    assert fake.get_user("u-admin")["accountEnabled"] is True


def test_graph_client_whose_allowed_hosts_miss_the_endpoint_sends_no_token(settings: Settings, fake: AzureFake) -> None:
    """Why graph_client() derives allowed_hosts from GRAPH_ENDPOINT: kiota drops the token
    silently for any other host (here: the public cloud host only)."""
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    fake.add_user("u-1", "a@contoso.example")

    async def naive() -> None:
        auth = AzureIdentityAuthenticationProvider(
            clients.credential(), scopes=[f"{settings.graph_endpoint}/.default"], allowed_hosts=["graph.microsoft.com"]
        )
        adapter = GraphRequestAdapter(auth)
        adapter.base_url = f"{settings.graph_endpoint}/v1.0"
        await GraphServiceClient(request_adapter=adapter).users.by_user_id("u-1").get()

    with pytest.raises(ODataError) as err:
        asyncio.run(naive())
    assert err.value.response_status_code == 401
    assert fake.last_request("GET", "/v1.0/users/u-1").header("Authorization") is None


def test_graph_retries_429_with_retry_after_but_not_500_or_timeouts(settings: Settings, fake: AzureFake) -> None:
    import httpx
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.user import User

    fake.add_user("u-1", "a@contoso.example")
    fake.inject("PATCH", r"/users/u-1$", 429, headers={"Retry-After": "1"})

    async def patch(**kw) -> None:
        await clients.graph_client(settings, **kw).users.by_user_id("u-1").patch(User(account_enabled=False))

    asyncio.run(patch())
    assert [r.status for r in fake.requests("PATCH")] == [429, 204]

    fake.clear_log()
    fake.inject("PATCH", r"/users/u-1$", 500)
    with pytest.raises(ODataError):
        asyncio.run(patch())
    assert len(fake.requests("PATCH")) == 1  # kiota retries 429/503/504 only

    fake.clear_log()
    fake.inject("PATCH", r"/users/u-1$", delay_seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(patch(timeout=0.3))
    assert len(fake.requests("PATCH")) == 1  # and never retries a timeout


# ---------------------------------------------------------------------------- Log Analytics


def test_logs_query_returns_rows_and_the_handler_sees_query_and_timespan(settings: Settings, fake: AzureFake) -> None:
    from azure.monitor.query import LogsQueryStatus

    sample = json.loads((SAMPLES / "log-analytics-query-response.json").read_text())
    seen: list[tuple[str, dict]] = []

    def answer(workspace: str, body: dict) -> dict:
        seen.append((workspace, body))
        return sample if "SecurityAlert" in body["query"] else {"tables": []}

    fake.log_analytics_handler = answer
    start = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)
    result = clients.logs_client(settings).query_workspace(
        "ws-guid", "SecurityAlert | where TimeGenerated > ago(1h)", timespan=(start, timedelta(minutes=30))
    )
    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    row = dict(zip(table.columns, table.rows[0], strict=True))
    assert row["SystemAlertId"] == "c8f1e2d3-4b5a-4968-8776-a5b4c3d2e1f0"
    assert row["TimeGenerated"] == datetime(2026, 11, 21, 22, 15, 42, 118000, tzinfo=UTC)
    assert seen[0][0] == "ws-guid" and seen[0][1]["timespan"].startswith("2026-11-21T22:00:00")
    assert fake.log_analytics_queries()[0]["query"].startswith("SecurityAlert")
    req = fake.last_request("POST", "/v1/workspaces/ws-guid/query")
    assert req.token_resource == settings.log_analytics_endpoint
    assert fake.writes() == []  # a query is not a write


def test_logs_partial_error_gives_a_partial_result(settings: Settings, fake: AzureFake) -> None:
    from azure.monitor.query import LogsQueryStatus

    fake.set_log_analytics_tables(
        [AzureFake.la_table([("SystemAlertId", "string")], [["a-1"]])], partial_error="Query exceeded the memory limit"
    )
    result = clients.logs_client(settings).query_workspace("ws", "SecurityAlert", timespan=timedelta(hours=1))
    assert result.status == LogsQueryStatus.PARTIAL
    assert result.partial_data[0].rows[0][0] == "a-1"
    assert result.partial_error.code == "PartialError"


def test_logs_post_is_retried_on_429_only_with_retry_after(settings: Settings, fake: AzureFake) -> None:
    from azure.core.exceptions import HttpResponseError

    client = clients.logs_client(settings, **FAST)
    fake.inject("POST", r"/query$", 429, headers={"Retry-After": "0"})
    client.query_workspace("ws", "SecurityIncident", timespan=timedelta(hours=1))
    assert [r.status for r in fake.requests("POST")] == [429, 200]

    fake.clear_log()
    fake.inject("POST", r"/query$", 429)  # no Retry-After: azure-core does not retry a POST on 429
    with pytest.raises(HttpResponseError):
        client.query_workspace("ws", "SecurityIncident", timespan=timedelta(hours=1))
    assert [r.status for r in fake.requests("POST")] == [429]


# ---------------------------------------------------------------------------- ACS Call Automation


def test_call_automation_create_call_play_recognize_hang_up(settings: Settings, fake: AzureFake) -> None:
    from azure.communication.callautomation import PhoneNumberIdentifier, RecognizeInputType, TextSource

    client = clients.call_automation_client(settings)
    props = client.create_call(
        PhoneNumberIdentifier("+15551230001"),
        "https://soc.example/api/calls/events",
        source_caller_id_number=PhoneNumberIdentifier("+15550000000"),
        operation_context="inc-1:attempt-1",
    )
    [call] = fake.calls()
    assert props.call_connection_id == call.call_connection_id
    assert (call.targets, call.source_caller_id, call.operation_context) == (
        ["+15551230001"],
        "+15550000000",
        "inc-1:attempt-1",
    )
    req = fake.last_request("POST", "/calling/callConnections")
    assert req.token_resource.rstrip("/") == ACS_AUDIENCE

    connection = client.get_call_connection(props.call_connection_id)
    prompt = TextSource(text="Priority one incident. Press 1 to acknowledge.", voice_name="en-US-JennyNeural")
    connection.play_media(prompt)
    connection.start_recognizing_media(
        RecognizeInputType.DTMF,
        PhoneNumberIdentifier("+15551230001"),
        play_prompt=prompt,
        dtmf_max_tones_to_collect=1,
        operation_context="ack",
    )
    connection.hang_up(is_for_everyone=True)
    assert call.action_names() == ["play", "recognize", "terminate"]
    assert call.actions[1][1]["recognizeOptions"]["dtmfOptions"]["maxTonesToCollect"] == 1
    event = fake.call_event(
        call.call_connection_id, "RecognizeCompleted", recognitionType="dtmf", dtmfResult={"tones": ["one"]}
    )[0]
    assert (
        event["type"] == "Microsoft.Communication.RecognizeCompleted"
        and event["data"]["operationContext"] == "inc-1:attempt-1"
    )


# ---------------------------------------------------------------------------- Tables (Azurite)


def test_table_service_on_azurite_creates_entities_and_detects_conflicts(azure_env: dict[str, str]) -> None:
    from azure.core.exceptions import ResourceExistsError

    service = clients.table_service(Settings.from_env())
    table = service.create_table_if_not_exists("devtoolsSmoke")
    table.create_entity({"PartitionKey": "inc-1", "RowKey": "0001", "event": "detected"})
    with pytest.raises(ResourceExistsError):
        table.create_entity({"PartitionKey": "inc-1", "RowKey": "0001", "event": "again"})
    assert table.get_entity("inc-1", "0001")["event"] == "detected"
    service.delete_table("devtoolsSmoke")


def test_table_service_from_uri_uses_the_managed_identity(settings: Settings) -> None:
    s = Settings.from_env({"EvidenceStorage__tableServiceUri": "https://stsoc.table.core.windows.net"})
    service = clients.table_service(s)
    assert service.url.startswith("https://stsoc.table.core.windows.net")
    assert service.credential is clients.credential()


# ---------------------------------------------------------------------------- retries and faults (azure-core)


def test_arm_429_with_retry_after_is_retried_after_the_wait(settings: Settings, fake: AzureFake) -> None:
    fake.add_nsg(nsg_id("nsg-r"), "westeurope")
    fault = fake.inject("GET", r"networkSecurityGroups/nsg-r$", 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    clients.network_client(settings, SUB).network_security_groups.get("rg-app", "nsg-r")
    assert time.monotonic() - started >= 0.9
    assert [r.status for r in fake.requests("GET", "nsg-r")] == [429, 200]
    assert fault.hits == 1 and fault.remaining == 0


def test_arm_500_three_times_then_success(settings: Settings, fake: AzureFake) -> None:
    from azure.mgmt.network.models import NetworkSecurityGroup

    fake.inject("PUT", r"networkSecurityGroups/nsg-5$", 500, times=3)
    client = clients.network_client(settings, SUB, **FAST)
    client.network_security_groups.begin_create_or_update(
        "rg-app", "nsg-5", NetworkSecurityGroup(location="westeurope")
    ).result()
    assert [r.status for r in fake.requests("PUT")] == [500, 500, 500, 201]


def test_arm_read_timeout_and_dropped_connection_are_retried_for_get(settings: Settings, fake: AzureFake) -> None:
    fake.add_nic(nic_id("nic-t"), "westeurope")
    fake.inject("GET", r"networkInterfaces/nic-t$", delay_seconds=1.0)
    fake.inject("GET", r"networkInterfaces/nic-t$", drop_connection=True)
    client = clients.network_client(settings, SUB, read_timeout=0.3, **FAST)
    assert client.network_interfaces.get("rg-app", "nic-t").name == "nic-t"
    gets = fake.requests("GET", "nic-t")
    assert len(gets) == 3 and [g.fault for g in gets] == [True, True, False]


def test_a_read_timeout_on_a_post_is_not_retried(settings: Settings, fake: AzureFake) -> None:
    from azure.core.exceptions import ServiceResponseError

    fake.inject("POST", r"/query$", delay_seconds=1.0)
    client = clients.logs_client(settings, read_timeout=0.3, **FAST)
    with pytest.raises(ServiceResponseError):
        client.query_workspace("ws", "SecurityAlert", timespan=timedelta(hours=1))
    assert len(fake.requests("POST")) == 1


def test_faults_are_consumed_in_order_then_normal_behaviour_resumes(fake: AzureFake) -> None:
    fake.add_nsg(nsg_id("nsg-f"), "westeurope")
    fake.inject("GET", "nsg-f", 503, times=2)
    fake.inject(None, "nsg-f", 403, body={"error": {"code": "AuthorizationFailed", "message": "no"}})
    statuses = [raw(fake, "GET", nsg_id("nsg-f")).status_code for _ in range(4)]
    assert statuses == [503, 503, 403, 200]
    assert all(f.remaining == 0 for f in fake.faults())


def test_custom_route_and_reset(fake: AzureFake) -> None:
    fake.route(
        "GET",
        r"/subscriptions/[^/]+/resourcegroups/rg-app$",
        lambda req, m: {"name": "rg-app", "location": "westeurope"},
    )
    assert raw(fake, "GET", RG).json()["location"] == "westeurope"
    fake.route("POST", r"/listKeys$", lambda req, m: FakeResponse(200, {"keys": []}))
    assert raw(fake, "POST", f"{RG}/providers/Microsoft.Storage/storageAccounts/st/listKeys").json() == {"keys": []}
    fake.add_user("u", "u@contoso.example")
    fake.reset()
    assert fake.requests() == [] and fake.get_user("u") is None
    assert raw(fake, "GET", RG).json()["error"]["code"] == "ResourceGroupNotFound"


# ---------------------------------------------------------------------------- Azurite


def test_azurite_names_every_endpoint_and_stop_ends_its_process_group(azurite) -> None:
    import os
    import socket

    from devtools.azurite import Azurite

    assert azurite.is_running()
    for service, port in (("Blob", azurite.blob_port), ("Queue", azurite.queue_port), ("Table", azurite.table_port)):
        assert f"{service}Endpoint=http://127.0.0.1:{port}/devstoreaccount1;" in azurite.connection_string
    other = Azurite().start()
    pid, port = other._proc.pid, other.table_port
    assert "azurite" in other.read_log().lower()
    other.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_azurite_that_cannot_start_says_why(tmp_path: Path) -> None:
    from devtools.azurite import Azurite, AzuriteError

    script = tmp_path / "azurite"
    script.write_text("#!/bin/sh\necho 'listen EADDRINUSE: address already in use' >&2\nexit 1\n")
    script.chmod(0o755)
    with pytest.raises(AzuriteError, match="EADDRINUSE"):
        Azurite(executable=str(script)).start()


# -- issue 15: latency of the real services ---------------------------------------------------------------


def test_nic_put_is_a_long_running_operation_that_completes_after_its_delay(
    settings: Settings, fake: AzureFake
) -> None:
    from azure.mgmt.network.models import NetworkSecurityGroup

    fake.add_nsg(nsg_id("nsg-q"), "westeurope")
    fake.add_nic(nic_id("nic-slow"), "westeurope")
    fake.set_lro("Microsoft.Network/networkInterfaces", after_seconds=0.6, methods=["PUT"])
    client = clients.network_client(settings, SUB)
    nic = client.network_interfaces.get("rg-app", "nic-slow")
    nic.properties.network_security_group = NetworkSecurityGroup(id=nsg_id("nsg-q"))
    fake.clear_log()
    started = time.monotonic()
    poller = client.network_interfaces.begin_create_or_update("rg-app", "nic-slow", nic)
    # Accepted, not done: the SDK's poller follows Azure-AsyncOperation until ARM says Succeeded.
    assert fake.get_resource(nic_id("nic-slow"))["properties"]["provisioningState"] == "Updating"
    updated = poller.result()
    assert time.monotonic() - started >= 0.6
    assert updated.properties.network_security_group.id == nsg_id("nsg-q")
    assert updated.properties.provisioning_state == "Succeeded"
    put, *polls = fake.requests()
    assert (put.method, put.status) == ("PUT", 200)
    operations = [r for r in polls if "/operations/" in r.path]
    assert len(operations) >= 2  # at least one InProgress answer before Succeeded


def test_configured_latency_delays_every_request_of_one_api(settings: Settings, fake: AzureFake) -> None:
    fake.add_user("u-slow", "slow@contoso.example")
    fake.set_latency("graph", 0.4)

    async def read() -> object:
        return await clients.graph_client(settings).users.by_user_id("u-slow").get()

    started = time.monotonic()
    user = asyncio.run(read())
    assert time.monotonic() - started >= 0.4
    assert user.user_principal_name == "slow@contoso.example"
