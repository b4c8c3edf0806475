"""Issue 15 (item 3): Durable settings for a latency-sensitive responder, and the optional
Durable Task Scheduler backend."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

# Host-read settings the scheduler backend adds (and nothing else).
DURABLE_TASK_SCHEDULER_SETTINGS = {
    "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type",
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName",
}


def timespan(value: str) -> timedelta:
    match = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})", value)
    assert match, f"{value!r} is not hh:mm:ss"
    hours, minutes, seconds = map(int, match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _durable() -> dict:
    return json.loads((ROOT / "host.json").read_text())["extensions"]["durableTask"]


def test_host_json_durable_settings_for_low_latency():
    durable = _durable()
    provider = durable["storageProvider"]
    # An idle control queue is polled at most this far apart: new work waits <= 2 s.
    assert timedelta(seconds=1) <= timespan(provider["maxQueuePollingInterval"]) <= timedelta(seconds=5)
    # partitionCount cannot change for an existing task hub: it stays the default, 4.
    assert provider["partitionCount"] == 4
    for name in ("maxConcurrentActivityFunctions", "maxConcurrentOrchestratorFunctions"):
        assert isinstance(durable[name], int) and 1 <= durable[name] <= 50, name
    # Extended sessions are a .NET in-process feature; Python keeps them off.
    assert durable["extendedSessionsEnabled"] is False
    assert durable["hubName"] == "SocResponderHub"
    assert "type" not in provider, "Azure Storage stays the default backend"


def test_every_durable_setting_is_explained():
    doc = (ROOT / "docs" / "durable-settings.md").read_text()
    durable = _durable()
    for name in [*durable["storageProvider"], *(k for k in durable if k not in ("storageProvider", "hubName"))]:
        assert f"`{name}`" in doc, f"docs/durable-settings.md does not explain {name}"
    assert "transactions" in doc and "DurableTaskScheduler" in doc
    for setting in DURABLE_TASK_SCHEDULER_SETTINGS:
        assert setting in doc


def _main() -> dict:
    return BicepParser().parse(file_path=INFRA / "main.bicep")


def test_azure_storage_is_the_default_backend():
    param = _main()["parameters"]["durableBackend"]
    assert param["default"] == "AzureStorage"
    allowed = next(d["argument"] for d in param["decorators"] if d["type"] == "allowed")
    assert allowed == ["AzureStorage", "DurableTaskScheduler"]


def test_scheduler_resources_exist_only_when_the_parameter_says_so():
    main = _main()
    assert main["variables"]["useDurableTaskScheduler"]["value"] == {
        "operator": {"type": "equals", "operands": {"operand_1": "durableBackend", "operand_2": "DurableTaskScheduler"}}
    }
    (module,) = [m for m in main["modules"].values() if m["detail"]["path"] == "core/durable-task-scheduler.bicep"]
    assert module["config"]["condition"] == "useDurableTaskScheduler"
    # Its settings too: an empty object for Azure Storage.
    settings = main["variables"]["durableBackendSettings"]["value"]["operator"]
    assert settings["type"] == "conditional" and settings["operands"]["condition"] == "useDurableTaskScheduler"
    assert settings["operands"]["false_value"] == {}
    chosen = settings["operands"]["true_value"]
    assert set(chosen) == DURABLE_TASK_SCHEDULER_SETTINGS
    assert chosen["AzureFunctionsJobHost__extensions__durableTask__storageProvider__type"] == "azureManaged"
    connection = json.dumps(chosen["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"])
    assert "Authentication=ManagedIdentity" in connection and "ClientID=" in connection and "Endpoint=" in connection
    (settings_module,) = [m for m in main["modules"].values() if m["detail"]["path"] == "app/app-settings.bicep"]
    assert settings_module["config"]["params"]["durableBackendSettings"] == "durableBackendSettings"
    assert "union(appSettings, durableBackendSettings)" in (INFRA / "app" / "app-settings.bicep").read_text()


def test_scheduler_module_task_hub_and_role():
    doc = BicepParser().parse(file_path=INFRA / "core" / "durable-task-scheduler.bicep")
    types = {r["type"]: r["config"] for r in doc["resources"].values()}
    assert set(types) == {
        "Microsoft.DurableTask/schedulers",
        "Microsoft.DurableTask/schedulers/taskHubs",
        "Microsoft.Authorization/roleAssignments",
    }
    assert types["Microsoft.DurableTask/schedulers/taskHubs"]["name"] == "taskHubName"
    assert types["Microsoft.DurableTask/schedulers"]["properties"]["ipAllowlist"], "an empty list denies everyone"
    assert doc["variables"]["durableTaskDataContributorRoleId"]["value"] == "0ad04412-c4d5-4796-b79c-f76d14c8d402"
    # The task hub is the one host.json names.
    main = _main()
    assert main["variables"]["durableTaskHubName"]["value"] == _durable()["hubName"]
