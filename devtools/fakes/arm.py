"""Azure Resource Manager in the fake: a generic resource store behind ``/subscriptions/...``.

PUT/GET/PATCH/DELETE of any resource and collection lists, child items ARM keeps inline
(securityRules, ipConfigurations), If-Match/If-None-Match preconditions (412), long-running
operations on request (``set_lro``), the NSG-in-use and NIC→NSG region checks ARM makes, and
ARM POST actions (Defender for Cloud alert state changes...) recorded and answered 204.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from devtools.fakes.arm_documents import (
    INLINE_CHILDREN,
    NIC,
    NSG,
    ArmPath,
    deep_merge,
    etag,
    norm_location,
    normalise,
    parse_arm_path,
    resource_key,
)
from devtools.fakes.arm_resources import nic_document, vm_document
from devtools.fakes.records import FakeResponse, RecordedRequest, now_iso
from devtools.fakes.server import FakeServer


class ArmFake(FakeServer):
    """The ARM part of ``AzureFake`` (seeding, inspection, and the answers to ARM requests)."""

    #: Long-running-operation answers carry ``retry-after-ms`` (set by ``AzureFake``).
    lro_retry_after_ms: int

    def _init_state(self) -> None:
        super()._init_state()
        self._arm: dict[str, dict] = {}
        self._history: dict[str, list[dict]] = {}
        self._lro: dict[str, dict] = {}
        self._operations: dict[str, dict] = {}
        self._ip_counter = 3

    def _next_private_ip(self) -> int:
        with self._lock:
            self._ip_counter += 1
            return self._ip_counter

    def set_lro(
        self,
        resource_type: str,
        *,
        polls: int = 1,
        fail: Mapping[str, str] | None = None,
        methods: Iterable[str] = ("PUT", "DELETE"),
        after_seconds: float | None = None,
    ) -> None:
        """Answer PUT (201 new / 200 existing) and DELETE (202) of ``resource_type``
        (e.g. "Microsoft.Network/networkSecurityGroups") as long-running operations with an
        ``Azure-AsyncOperation`` header: the operation reports InProgress ``polls`` times,
        then Succeeded (or Failed with ``fail`` = {"code", "message"}).

        ``after_seconds`` (issue 15): instead of a number of polls, the operation completes that long
        after it was accepted, however often it is polled — as ARM's own NIC updates do (seconds)."""
        with self._lock:
            self._lro[resource_type.lower()] = {
                "polls": polls,
                "fail": dict(fail) if fail else None,
                "methods": {m.upper() for m in methods},
                "after_seconds": after_seconds,
            }

    def add_resource(self, resource_id: str, document: Mapping[str, Any]) -> dict:
        """Seed any ARM resource (stored as given, plus id/name/type/etag and provisioningState)."""
        ap = parse_arm_path(resource_id)
        if ap is None or ap.is_collection:
            raise ValueError(f"not an ARM resource id: {resource_id}")
        doc = copy.deepcopy(dict(document))
        doc["id"] = resource_id
        doc["name"] = ap.name
        doc.setdefault("type", ap.type)
        doc.setdefault("etag", etag())
        doc.setdefault("properties", {})
        doc["properties"].setdefault("provisioningState", "Succeeded")
        with self._lock:
            self._store(doc)
        return copy.deepcopy(doc)

    def add_vm(
        self,
        resource_id: str,
        location: str,
        nic_ids: Iterable[str],
        tags: Mapping[str, str] | None = None,
        *,
        os_type: str = "Linux",
        vm_size: str = "Standard_D2s_v5",
        power_state: str | None = None,
    ) -> dict:
        """Seed a VM whose properties.networkProfile.networkInterfaces[] are ``nic_ids``
        (first primary); NICs already seeded get their virtualMachine back-reference."""
        ap = parse_arm_path(resource_id)
        assert ap and ap.name, resource_id
        nic_ids = list(nic_ids)
        vm = self.add_resource(
            resource_id,
            vm_document(ap, location, nic_ids, tags, os_type=os_type, vm_size=vm_size, power_state=power_state),
        )
        with self._lock:
            for i, nic in enumerate(nic_ids):
                stored = self._arm.get(resource_key(nic))
                if stored is not None:
                    stored = copy.deepcopy(stored)
                    stored["properties"]["virtualMachine"] = {"id": resource_id}
                    stored["properties"]["primary"] = i == 0
                    stored["etag"] = etag()
                    self._store(stored)
        return vm

    def add_nic(
        self,
        resource_id: str,
        location: str,
        nsg_id: str | None = None,
        ip_configurations: Iterable[Mapping[str, Any]] | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        vm_id: str | None = None,
        mac_address: str | None = None,
        accelerated_networking: bool = False,
    ) -> dict:
        """Seed a NIC as ARM returns it.

        ``ip_configurations``: ARM-shaped items ({"name", "properties": {...}}) or short ones
        ({"name", "subnet_id", "private_ip", "public_ip_id", "primary"}); default one
        ``ipconfig1`` in ``<vnet-RG>/subnets/default`` with a fresh 10.0.0.x address.
        """
        ap = parse_arm_path(resource_id)
        assert ap and ap.name, resource_id
        doc = nic_document(
            resource_id,
            ap,
            location,
            nsg_id,
            ip_configurations,
            tags=tags,
            vm_id=vm_id,
            mac_address=mac_address,
            accelerated_networking=accelerated_networking,
            next_ip=self._next_private_ip,
        )
        return self.add_resource(resource_id, doc)

    def add_nsg(
        self,
        resource_id: str,
        location: str,
        security_rules: Iterable[Mapping[str, Any]] = (),
        *,
        tags: Mapping[str, str] | None = None,
    ) -> dict:
        """Seed an NSG (default rules added; ``security_rules`` ARM-shaped {"name", "properties"})."""
        doc = {
            "location": location,
            "tags": dict(tags or {}),
            "properties": {
                "resourceGuid": str(uuid.uuid4()),
                "securityRules": [copy.deepcopy(dict(r)) for r in security_rules],
            },
        }
        with self._lock:
            doc = normalise(resource_id, doc, None, parse_arm_path(resource_id))  # type: ignore[arg-type]
        return self.add_resource(resource_id, doc)

    def get_resource(self, resource_id: str) -> dict | None:
        """The stored resource (as a GET would answer it), or None; ids ignore case."""
        with self._lock:
            doc = self._arm.get(resource_key(resource_id))
            return self._present(doc) if doc is not None else None

    def resources(self, resource_type: str | None = None) -> list[dict]:
        with self._lock:
            return [
                self._present(d)
                for d in self._arm.values()
                if resource_type is None or d.get("type", "").lower() == resource_type.lower()
            ]

    def resource_history(self, resource_id: str) -> list[dict]:
        """Every stored version of a resource, seed first."""
        with self._lock:
            return copy.deepcopy(self._history.get(resource_key(resource_id), []))

    def delete_resource(self, resource_id: str) -> None:
        with self._lock:
            self._arm.pop(resource_key(resource_id), None)

    # ARM internals ---------------------------------------------------------
    def _store(self, doc: dict) -> None:
        key = resource_key(doc["id"])
        self._arm[key] = doc
        self._history.setdefault(key, []).append(copy.deepcopy(doc))

    def _present(self, doc: dict) -> dict:
        out = copy.deepcopy(doc)
        if out.get("type", "").lower() == NSG:
            me = resource_key(out["id"])
            nics = [
                {"id": d["id"]}
                for d in self._arm.values()
                if d.get("type", "").lower() == NIC
                and resource_key(((d.get("properties") or {}).get("networkSecurityGroup") or {}).get("id") or "/") == me
            ]
            if nics:
                out.setdefault("properties", {})["networkInterfaces"] = nics
            else:
                out.get("properties", {}).pop("networkInterfaces", None)
        return out

    def _arm_answer(self, req: RecordedRequest) -> FakeResponse:
        m = re.match(
            r"^/subscriptions/[^/]+/providers/[^/]+/locations/[^/]+/(?:operations|operationResults)/([^/]+)$",
            req.path,
            re.I,
        )
        if m and req.method == "GET" and m.group(1) in self._operations:
            return self._operation_status(m.group(1))
        ap = parse_arm_path(req.path)
        if req.method == "POST":
            return FakeResponse(204)  # ARM actions (alert dismiss/resolve, ...): recorded, no content
        if ap is None:
            return _arm_error(
                404,
                "InvalidResourceId" if req.method != "GET" else "ResourceNotFound",
                f"The resource path '{req.path}' is not a valid ARM resource id.",
            )
        if req.method in ("GET", "HEAD"):
            return self._arm_get(req, ap)
        if req.method == "PUT":
            return self._arm_put(req, ap)
        if req.method == "PATCH":
            return self._arm_patch(req, ap)
        if req.method == "DELETE":
            return self._arm_delete(req, ap)
        return _arm_error(405, "MethodNotAllowed", f"{req.method} is not supported.")

    def _not_found(self, ap: ArmPath) -> FakeResponse:
        if ap.type == "Microsoft.Resources/resourceGroups":
            return _arm_error(404, "ResourceGroupNotFound", f"Resource group '{ap.name}' could not be found.")
        return _arm_error(
            404,
            "ResourceNotFound",
            f"The Resource '{ap.type}/{ap.name}' under resource group '{ap.resource_group}' was not found. "
            "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )

    def _inline_parent(self, ap: ArmPath) -> tuple[dict, str] | None:
        segs = ap.path.strip("/").split("/")
        coll = segs[-1] if ap.is_collection else segs[-2]
        prop = INLINE_CHILDREN.get(coll.lower())
        if prop is None:
            return None
        parent_path = "/" + "/".join(segs[:-1] if ap.is_collection else segs[:-2])
        parent = self._arm.get(resource_key(parent_path))
        return (parent, prop) if parent is not None else None

    def _arm_get(self, req: RecordedRequest, ap: ArmPath) -> FakeResponse:
        doc = self._arm.get(resource_key(req.path))
        if doc is not None:
            return FakeResponse(200, self._present(doc), {"ETag": doc.get("etag", "")})
        inline = self._inline_parent(ap)
        if inline is not None:
            parent, prop = inline
            items = (parent.get("properties") or {}).get(prop) or []
            if ap.is_collection:
                return FakeResponse(200, {"value": copy.deepcopy(items)})
            for item in items:
                if str(item.get("name", "")).lower() == (ap.name or "").lower():
                    return FakeResponse(200, copy.deepcopy(item))
            return self._not_found(ap)
        if ap.is_collection:
            coll = resource_key(req.path)
            found = []
            for k, d in self._arm.items():
                if k.rsplit("/", 1)[0] == coll or (
                    ap.resource_group is None
                    and d.get("type", "").lower() == ap.type.lower()
                    and k.startswith(f"/subscriptions/{ap.subscription.lower()}/")
                ):
                    found.append(d)
            return FakeResponse(200, {"value": [self._present(d) for d in found]})
        return self._not_found(ap)

    def _precondition(self, req: RecordedRequest, old: dict | None) -> FakeResponse | None:
        if_match = req.header("If-Match")
        if if_match and if_match != "*" and (old is None or old.get("etag") != if_match):
            return _arm_error(
                412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met."
            )
        if if_match == "*" and old is None:
            return self._not_found(parse_arm_path(req.path))  # type: ignore[arg-type]
        if req.header("If-None-Match") == "*" and old is not None:
            return _arm_error(412, "PreconditionFailed", "The resource already exists.")
        return None

    def _validate(self, doc: dict) -> FakeResponse | None:
        if doc.get("type", "").lower() == NIC:
            nsg_id = ((doc.get("properties") or {}).get("networkSecurityGroup") or {}).get("id")
            if nsg_id:
                nsg = self._arm.get(resource_key(nsg_id))
                if nsg is None or norm_location(nsg.get("location")) != norm_location(doc.get("location")):
                    return _arm_error(
                        400,
                        "InvalidResourceReference",
                        f"Resource {nsg_id} referenced by resource {doc['id']} was not found. Please make sure "
                        "that the referenced resource exists, and that both resources are in the same region.",
                    )
        return None

    def _lro_response(self, ap: ArmPath, key: str, kind: str, status: int, body: Any, cfg: dict) -> FakeResponse:
        op_id = str(uuid.uuid4())
        location = norm_location((self._arm.get(key) or {}).get("location")) or "global"
        namespace = ap.type.split("/")[0]
        self._operations[op_id] = {
            "key": key,
            "kind": kind,
            "remaining": cfg["polls"],
            "fail": cfg["fail"],
            "start": now_iso(),
            # issue 15: completes at a wall-clock time rather than after a number of polls
            "due": time.monotonic() + cfg["after_seconds"] if cfg.get("after_seconds") is not None else None,
        }
        url = f"{self.url}/subscriptions/{ap.subscription}/providers/{namespace}/locations/{location}/operations/{op_id}?api-version=2024-05-01"
        return FakeResponse(status, body, {"Azure-AsyncOperation": url, "retry-after-ms": str(self.lro_retry_after_ms)})

    def _operation_status(self, op_id: str) -> FakeResponse:
        op = self._operations[op_id]
        base = {"id": op_id, "name": op_id, "startTime": op["start"]}
        headers = {"retry-after-ms": str(self.lro_retry_after_ms)}
        if op.get("done"):
            return FakeResponse(200, op["done"], headers)
        if op.get("due") is not None:
            if time.monotonic() < op["due"]:
                return FakeResponse(200, {**base, "status": "InProgress"}, headers)
        elif op["remaining"] > 0:
            op["remaining"] -= 1
            return FakeResponse(200, {**base, "status": "InProgress"}, headers)
        doc = self._arm.get(op["key"])
        if op["fail"]:
            if doc is not None and op["kind"] == "put":
                doc["properties"]["provisioningState"] = "Failed"
            result = {**base, "status": "Failed", "endTime": now_iso(), "error": op["fail"]}
        else:
            if op["kind"] == "put" and doc is not None:
                doc["properties"]["provisioningState"] = "Succeeded"
                self._history.setdefault(op["key"], []).append(copy.deepcopy(doc))
            elif op["kind"] == "delete":
                self._arm.pop(op["key"], None)
            result = {**base, "status": "Succeeded", "endTime": now_iso()}
        op["done"] = result
        return FakeResponse(200, result, headers)

    def _arm_put(self, req: RecordedRequest, ap: ArmPath) -> FakeResponse:
        if ap.is_collection or not ap.name:
            return _arm_error(405, "MethodNotAllowed", "PUT needs a resource id, not a collection.")
        if not isinstance(req.body, dict):
            return _arm_error(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        inline = self._inline_parent(ap)
        if inline is not None and resource_key(req.path) not in self._arm:
            return self._arm_put_inline(req, ap, *inline)
        key = resource_key(req.path)
        old = self._arm.get(key)
        bad = self._precondition(req, old)
        if bad is not None:
            return bad
        doc = normalise(req.path, req.body, old, ap)
        bad = self._validate(doc)
        if bad is not None:
            return bad
        status = 200 if old is not None else 201
        cfg = self._lro.get(doc["type"].lower())
        if cfg and "PUT" in cfg["methods"]:
            doc["properties"]["provisioningState"] = "Updating" if old is not None else "Creating"
            self._store(doc)
            return self._lro_response(ap, key, "put", status, self._present(doc), cfg)
        self._store(doc)
        return FakeResponse(status, self._present(doc), {"ETag": doc["etag"]})

    def _arm_put_inline(self, req: RecordedRequest, ap: ArmPath, parent: dict, prop: str) -> FakeResponse:
        props = parent.setdefault("properties", {})
        items = props.setdefault(prop, [])
        body = copy.deepcopy(req.body)
        body["name"] = ap.name
        existing = next((i for i, x in enumerate(items) if str(x.get("name", "")).lower() == ap.name.lower()), None)  # type: ignore[union-attr]
        new_props = dict(props)
        new_items = list(items)
        if existing is None:
            new_items.append(body)
        else:
            new_items[existing] = body
        new_props[prop] = new_items
        new_parent = {k: v for k, v in parent.items() if k not in ("id", "name", "type", "etag")}
        new_parent["properties"] = new_props
        parent_ap = parse_arm_path(parent["id"])
        doc = normalise(parent["id"], new_parent, parent, parent_ap)  # type: ignore[arg-type]
        bad = self._validate(doc)
        if bad is not None:
            return bad
        self._store(doc)
        child = next(x for x in doc["properties"][prop] if str(x.get("name", "")).lower() == ap.name.lower())  # type: ignore[union-attr]
        return FakeResponse(201 if existing is None else 200, copy.deepcopy(child))

    def _arm_patch(self, req: RecordedRequest, ap: ArmPath) -> FakeResponse:
        key = resource_key(req.path)
        old = self._arm.get(key)
        if old is None:
            return self._not_found(ap)
        bad = self._precondition(req, old)
        if bad is not None:
            return bad
        if not isinstance(req.body, dict):
            return _arm_error(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        doc = copy.deepcopy(old)
        for k, v in req.body.items():
            if k in ("id", "name", "type", "etag"):
                continue
            if k == "tags":
                doc["tags"] = copy.deepcopy(v)  # PATCH replaces the tag set
            elif isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k] = deep_merge(doc[k], v)
            else:
                doc[k] = copy.deepcopy(v)
        doc["etag"] = etag()
        bad = self._validate(doc)
        if bad is not None:
            return bad
        self._store(doc)
        return FakeResponse(200, self._present(doc), {"ETag": doc["etag"]})

    def _arm_delete(self, req: RecordedRequest, ap: ArmPath) -> FakeResponse:
        key = resource_key(req.path)
        old = self._arm.get(key)
        if old is None:
            inline = self._inline_parent(ap)
            if inline is not None and not ap.is_collection:
                parent, prop = inline
                items = parent.get("properties", {}).get(prop) or []
                kept = [x for x in items if str(x.get("name", "")).lower() != (ap.name or "").lower()]
                if len(kept) != len(items):
                    parent["properties"][prop] = kept
                    parent["etag"] = etag()
                    self._history.setdefault(resource_key(parent["id"]), []).append(copy.deepcopy(parent))
                    return FakeResponse(200)
            return FakeResponse(204)
        if old.get("type", "").lower() == NSG:
            users = [
                d["id"]
                for d in self._arm.values()
                if d.get("type", "").lower() == NIC
                and resource_key(((d.get("properties") or {}).get("networkSecurityGroup") or {}).get("id") or "/")
                == key
            ]
            if users:
                return _arm_error(
                    400,
                    "InUseNetworkSecurityGroupCannotBeDeleted",
                    f"Network security group {old['id']} cannot be deleted because it is in use by the following resources: {users}.",
                )
        cfg = self._lro.get(old.get("type", "").lower())
        if cfg and "DELETE" in cfg["methods"]:
            return self._lro_response(ap, key, "delete", 202, None, cfg)
        self._arm.pop(key, None)
        return FakeResponse(200)


def _arm_error(status: int, code: str, message: str) -> FakeResponse:
    return FakeResponse(status, {"error": {"code": code, "message": message}})
