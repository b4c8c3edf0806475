"""A fake `az` for the app-registration and caller-key scripts (issues 11 and 12).

It understands exactly the az commands and --query shapes the scripts use, keeps Entra
applications, service principals, federated credentials, Key Vault secrets and function
keys in a JSON state file, and records every call, so tests can assert what a script did
and that running it twice changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
SOC_TENANT = "44444444-4444-4444-4444-444444444444"

FAKE_AZ = r"""#!{python}
import fcntl, json, os, re, sys, uuid
args = sys.argv[1:]
# Read a piped value first, then lock: `keys set | secret set` runs two fakes at once.
stdin_value = sys.stdin.read() if "/dev/stdin" in args else None
lock = open(os.environ["FAKE_AZ_STATE"] + ".lock", "w")
fcntl.flock(lock, fcntl.LOCK_EX)
state_path = os.environ["FAKE_AZ_STATE"]
empty = {{"apps": [], "sps": [], "secrets": {{}}, "keys": {{}}, "calls": []}}
state = json.load(open(state_path)) if os.path.exists(state_path) else empty
state["calls"].append(args)
def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default
def quoted(q):
    m = re.search(r"=='([^']*)'", q or "")
    return m.group(1) if m else None
def load(value):
    return json.load(open(value[1:])) if value.startswith("@") else json.loads(value)
def app(app_id):
    return next(a for a in state["apps"] if a["appId"] == app_id)
query = opt("--query", "")
out = None
cmd = args[:3]
if args[:3] == ["deployment", "sub", "show"]:
    outputs = json.loads(os.environ["FAKE_AZ_OUTPUTS"])
    m = re.fullmatch(r"properties\.outputs\.(\w+)\.value(.*)", query)
    value = outputs.get(m.group(1))
    if m.group(2):  # callerKeys rows
        out = "\n".join("\t".join(row[k] for k in ("caller", "functionName", "keyName", "secretName")) for row in value or [])
    else:
        out = value or ""
elif args[:2] == ["account", "show"]:
    out = "{tenant}"
elif args[:3] == ["ad", "sp", "show"] and opt("--id") == "00000003-0000-0000-c000-000000000000":
    out = str(uuid.uuid5(uuid.NAMESPACE_URL, quoted(query)))
elif args[:3] == ["ad", "app", "list"]:
    out = next((a["appId"] for a in state["apps"] if a["displayName"] == opt("--display-name")), "")
elif args[:3] == ["ad", "app", "create"]:
    new = {{"appId": str(uuid.uuid4()), "displayName": opt("--display-name"), "signInAudience": opt("--sign-in-audience"),
           "appRoles": [], "identifierUris": [], "requiredResourceAccess": [], "fics": [], "redirectUris": []}}
    if "--web-redirect-uris" in args:
        new["redirectUris"] = [opt("--web-redirect-uris")]
    state["apps"].append(new)
    out = new["appId"]
elif args[:3] == ["ad", "app", "show"]:
    out = next((r["id"] for r in app(opt("--id"))["appRoles"] if r["value"] == quoted(query)), "")
elif args[:3] == ["ad", "app", "update"]:
    a = app(opt("--id"))
    if "--app-roles" in args:
        a["appRoles"] = load(opt("--app-roles"))
    if "--identifier-uris" in args:
        a["identifierUris"] = [opt("--identifier-uris")]
    if "--web-redirect-uris" in args:
        a["redirectUris"] = [opt("--web-redirect-uris")]
    if "--required-resource-accesses" in args:
        a["requiredResourceAccess"] = load(opt("--required-resource-accesses"))
    if "--sign-in-audience" in args:
        a["signInAudience"] = opt("--sign-in-audience")
elif args[:4] == ["ad", "app", "federated-credential", "list"]:
    out = next((f["subject"] for f in app(opt("--id"))["fics"] if f["name"] == quoted(query)), "")
elif args[:4] == ["ad", "app", "federated-credential", "create"]:
    app(opt("--id"))["fics"].append(load(opt("--parameters")))
elif args[:4] == ["ad", "app", "federated-credential", "delete"]:
    a = app(opt("--id"))
    a["fics"] = [f for f in a["fics"] if f["name"] != opt("--federated-credential-id")]
elif args[:3] == ["ad", "sp", "list"]:
    wanted = re.search(r"appId eq '([^']+)'", opt("--filter")).group(1)
    out = next((s["id"] for s in state["sps"] if s["appId"] == wanted), "")
elif args[:3] == ["ad", "sp", "create"]:
    sp = {{"id": str(uuid.uuid4()), "appId": opt("--id"), "appRoleAssignmentRequired": False}}
    state["sps"].append(sp)
    out = sp["id"] if query == "id" else ""
elif args[:3] == ["ad", "sp", "update"]:
    sp = next(s for s in state["sps"] if s["appId"] == opt("--id"))
    key, value = opt("--set").split("=")
    sp[key] = value == "true"
elif args[:3] == ["keyvault", "secret", "list"]:
    out = quoted(query) if quoted(query) in state["secrets"] else ""
elif args[:3] == ["keyvault", "secret", "set"]:
    value = stdin_value if opt("--file") == "/dev/stdin" else opt("--value")
    assert value and "\n" not in value, repr(value)
    versions = state["secrets"].setdefault(opt("--name"), [])
    versions.append({{"value": value, "enabled": True, "vault": opt("--vault-name")}})
elif args[:3] == ["keyvault", "secret", "set-attributes"]:
    state["secrets"][opt("--name")][-1]["enabled"] = opt("--enabled") == "true"
elif args[:4] == ["functionapp", "function", "keys", "set"]:
    value = uuid.uuid4().hex + uuid.uuid4().hex
    state["keys"][opt("--function-name") + "/" + opt("--key-name")] = value
    out = value
elif args[:4] == ["functionapp", "function", "keys", "delete"]:
    state["keys"].pop(opt("--function-name") + "/" + opt("--key-name"), None)
else:
    sys.exit("fake az: unexpected command " + " ".join(args))
json.dump(state, open(state_path, "w"))
if out:
    print(out)
"""


@pytest.fixture
def fake_az_for(tmp_path):
    """fake_az_for(script, outputs) -> run(*args) -> (CompletedProcess, state)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable, tenant=SOC_TENANT))
    az.chmod(0o755)
    state = tmp_path / "az-state.json"

    def factory(script: str, outputs: dict | None = None):
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_AZ_STATE": str(state),
            "FAKE_AZ_OUTPUTS": json.dumps(outputs or {}),
        }

        def run(*args):
            proc = subprocess.run(
                ["bash", str(SCRIPTS / script), *args], env=env, capture_output=True, text=True, timeout=60
            )
            data = (
                json.loads(state.read_text())
                if state.exists()
                else {"apps": [], "sps": [], "secrets": {}, "keys": {}, "calls": []}
            )
            return proc, data

        return run

    return factory
