"""Test infrastructure shared by every test: the Azure fake, Azurite, environment.

Fixtures:
- ``azure_fake`` (session): one running ``devtools.fakes.AzureFake``.
- ``fake`` (function): that fake, reset (empty store, log, faults) before and after the test.
- ``azurite`` (session): one in-memory Azurite; its log is attached to failing tests' reports.
- ``fake_env`` (function): os.environ pointed at the fake (no storage); client caches reset.
- ``azure_env`` (function): ``fake_env`` plus ``EvidenceStorage`` / ``AzureWebJobsStorage`` =
  the Azurite connection string, with every Azurite table dropped first.

The app harness (fixture ``app``, helpers ``sample``/``ROOT``/``APP_SETTINGS``) is the plugin
tests/fixtures/app.py, registered below: sub-package conftests use its fixtures without importing them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.azurite import Azurite, AzuriteError
from devtools.fakes import AzureFake

pytest_plugins = ["tests.fixtures.app"]

# The layer of a test (tests/README.md) follows from the fixtures it really uses: any of these brings a network
# service in (the loopback Azure fake, Azurite, or the app wired to them), so the test is functional; a test
# that uses none is unit. Decided here, once, so a marker can never say one thing while the test does another;
# only ``e2e`` (a running Functions host or deployed resources) is declared by hand.
SERVICE_FIXTURES = frozenset({"azure_fake", "fake", "azurite", "fake_env", "azure_env", "app"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        declared = [m.name for m in item.iter_markers() if m.name in ("unit", "functional")]
        if declared:
            raise pytest.UsageError(
                f"{item.nodeid}: the unit/functional marker is derived from the fixtures, not declared"
            )
        if item.get_closest_marker("e2e"):
            continue
        services = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.functional if services else pytest.mark.unit)


# Settings a developer's shell (or CI) may carry that would point the app elsewhere.
_APP_ENV = (
    "AzureWebJobsStorage",
    "ARM_ENDPOINT",
    "GRAPH_ENDPOINT",
    "LOG_ANALYTICS_ENDPOINT",
    "LOG_ANALYTICS_WORKSPACE_ID",
    "ACS_ENDPOINT",
    "EvidenceStorage",
    "EvidenceStorage__tableServiceUri",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "IDENTITY_SERVER_THUMBPRINT",
    # issue 11: tenancy
    "SOC_TENANT_ID",
    "SOC_APP_CLIENT_ID",
    "AZURE_AUTHORITY_HOST",
)

_fake_instance: AzureFake | None = None
_azurite_instance: Azurite | None = None


@pytest.fixture(scope="session")
def azure_fake() -> Iterator[AzureFake]:
    global _fake_instance
    fake = AzureFake().start()
    _fake_instance = fake
    try:
        yield fake
    finally:
        _fake_instance = None
        fake.stop()


@pytest.fixture
def fake(azure_fake: AzureFake) -> Iterator[AzureFake]:
    azure_fake.reset()
    yield azure_fake
    azure_fake.reset()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    global _azurite_instance
    emulator = Azurite()
    try:
        emulator.start()
    except AzuriteError as exc:
        pytest.fail(f"Azurite could not start: {exc}", pytrace=False)
    _azurite_instance = emulator
    try:
        yield emulator
    finally:
        _azurite_instance = None
        emulator.stop()


# azure-core back-off for tests: the first retry never waits and Retry-After is still
# honoured, but later retries should not sleep 1.6 s, 3.2 s, ... (see shared.adapters.clients).
TEST_CLIENT_DEFAULTS = {"retry_backoff_factor": 0.01}


@pytest.fixture
def fake_env(fake: AzureFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """os.environ pointed at the fake (app settings, managed identity, CA bundle).

    Cached SDK clients and the credential are dropped before and after, so no client
    built for another environment is reused, and azure-core clients built by
    ``shared.adapters.clients`` use ``TEST_CLIENT_DEFAULTS`` (fast back-off) meanwhile.
    """
    from shared.adapters import clients

    for name in _APP_ENV:
        monkeypatch.delenv(name, raising=False)
    env = fake.environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clients.set_client_defaults(**TEST_CLIENT_DEFAULTS)
    yield env
    clients.set_client_defaults()


def _drop_all_tables(azurite: Azurite) -> None:
    from azure.data.tables import TableServiceClient

    with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        for table in list(service.list_tables()):
            service.delete_table(table.name)


@pytest.fixture
def azure_env(fake_env: dict[str, str], azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``fake_env`` plus ``EvidenceStorage`` and ``AzureWebJobsStorage`` = Azurite.

    Azurite lives for the whole session: every table in it is dropped before the
    test, so each test starts with no evidence (blobs and queues are left alone).
    """
    _drop_all_tables(azurite)
    storage = {"EvidenceStorage": azurite.connection_string, "AzureWebJobsStorage": azurite.connection_string}
    for name, value in storage.items():
        monkeypatch.setenv(name, value)
    return dict(fake_env, **storage)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.failed:
        fixtures = getattr(item, "fixturenames", ())
        if _azurite_instance is not None and {"azurite", "azure_env"} & set(fixtures):
            report.sections.append(("Azurite log (tail)", _azurite_instance.read_log(8000) or "(empty)"))
        if _fake_instance is not None and {"fake", "fake_env", "azure_env", "azure_fake"} & set(fixtures):
            lines = [
                f"{r.method} {r.raw_path} -> {r.status}{' (fault)' if r.fault else ''}"
                for r in _fake_instance.requests(include_tokens=True)[-60:]
            ]
            if _fake_instance.errors:
                lines.append("fake errors:")
                lines.extend(_fake_instance.errors[-3:])
            report.sections.append(("Azure fake request log (last 60)", "\n".join(lines) or "(no requests)"))
    return report
