"""Seed documents: VMs and NICs shaped the way ARM returns them (what ``AzureFake.add_vm/add_nic`` store)."""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from devtools.fakes.arm_documents import ArmPath
from devtools.fakes.records import now_iso


def vm_document(
    ap: ArmPath,
    location: str,
    nic_ids: list[str],
    tags: Mapping[str, str] | None,
    *,
    os_type: str,
    vm_size: str,
    power_state: str | None,
) -> dict:
    """A VM whose properties.networkProfile.networkInterfaces[] are ``nic_ids`` (first primary)."""
    name = ap.name
    doc: dict[str, Any] = {
        "location": location,
        "tags": dict(tags or {}),
        "properties": {
            "vmId": str(uuid.uuid4()),
            "hardwareProfile": {"vmSize": vm_size},
            "storageProfile": {
                "imageReference": (
                    {
                        "publisher": "Canonical",
                        "offer": "ubuntu-24_04-lts",
                        "sku": "server",
                        "version": "latest",
                        "exactVersion": "24.04.202601010",
                    }
                    if os_type == "Linux"
                    else {
                        "publisher": "MicrosoftWindowsServer",
                        "offer": "WindowsServer",
                        "sku": "2022-datacenter-azure-edition",
                        "version": "latest",
                        "exactVersion": "20348.2849.241206",
                    }
                ),
                "osDisk": {
                    "osType": os_type,
                    "name": f"{name}_OsDisk_1",
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {
                        "storageAccountType": "Premium_LRS",
                        "id": f"/subscriptions/{ap.subscription}/resourceGroups/{ap.resource_group}/providers/Microsoft.Compute/disks/{name}_OsDisk_1",
                    },
                    "deleteOption": "Delete",
                    "diskSizeGB": 30,
                },
                "dataDisks": [],
            },
            "osProfile": {
                "computerName": name,
                "adminUsername": "azureuser",
                **(
                    {"linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True}}
                    if os_type == "Linux"
                    else {"windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": True}}
                ),
                "secrets": [],
                "allowExtensionOperations": True,
            },
            "networkProfile": {
                "networkInterfaces": [
                    {"id": nic, "properties": {"primary": i == 0, "deleteOption": "Detach"}}
                    for i, nic in enumerate(nic_ids)
                ]
            },
            "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
            "timeCreated": now_iso(),
        },
    }
    if power_state:
        doc["properties"]["instanceView"] = {
            "statuses": [
                {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                {"code": f"PowerState/{power_state}", "level": "Info", "displayStatus": f"VM {power_state}"},
            ]
        }
    return doc


def nic_document(
    resource_id: str,
    ap: ArmPath,
    location: str,
    nsg_id: str | None,
    ip_configurations: Iterable[Mapping[str, Any]] | None,
    *,
    tags: Mapping[str, str] | None,
    vm_id: str | None,
    mac_address: str | None,
    accelerated_networking: bool,
    next_ip: Callable[[], int],
) -> dict:
    """A NIC as ARM returns it; ``next_ip()`` numbers the fresh 10.0.x.y addresses of short ip configurations."""
    default_subnet = (
        f"/subscriptions/{ap.subscription}/resourceGroups/{ap.resource_group}/providers/"
        f"Microsoft.Network/virtualNetworks/vnet-{ap.resource_group}/subnets/default"
    )
    configs = []
    for i, cfg in enumerate(ip_configurations or [{}]):
        cfg = dict(cfg)
        name = cfg.get("name") or f"ipconfig{i + 1}"
        if "properties" in cfg:
            ip_props = copy.deepcopy(cfg["properties"])
        else:
            n = next_ip()
            ip = cfg.get("private_ip") or f"10.0.{n // 250}.{n % 250 + 4}"
            ip_props = {
                "privateIPAddress": ip,
                "privateIPAllocationMethod": cfg.get("allocation", "Dynamic"),
                "privateIPAddressVersion": "IPv4",
                "subnet": {"id": cfg.get("subnet_id") or default_subnet},
                "primary": cfg.get("primary", i == 0),
            }
            if cfg.get("public_ip_id"):
                ip_props["publicIPAddress"] = {"id": cfg["public_ip_id"]}
        ip_props.setdefault("provisioningState", "Succeeded")
        configs.append(
            {
                "name": name,
                "id": f"{resource_id}/ipConfigurations/{name}",
                "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
                "properties": ip_props,
            }
        )
    mac = mac_address or "00-22-48-" + "-".join(f"{b:02X}" for b in secrets.token_bytes(3))
    props: dict[str, Any] = {
        "resourceGuid": str(uuid.uuid4()),
        "ipConfigurations": configs,
        "dnsSettings": {
            "dnsServers": [],
            "appliedDnsServers": [],
            "internalDomainNameSuffix": f"{secrets.token_hex(8)}.ax.internal.cloudapp.net",
        },
        "macAddress": mac,
        "primary": True,
        "vnetEncryptionSupported": False,
        "enableAcceleratedNetworking": accelerated_networking,
        "disableTcpStateTracking": False,
        "enableIPForwarding": False,
        "hostedWorkloads": [],
        "tapConfigurations": [],
        "nicType": "Standard",
        "auxiliaryMode": "None",
        "auxiliarySku": "None",
    }
    if nsg_id:
        props["networkSecurityGroup"] = {"id": nsg_id}
    if vm_id:
        props["virtualMachine"] = {"id": vm_id}
    doc = {"location": location, "tags": dict(tags or {}), "kind": "Regular", "properties": props}
    return doc
