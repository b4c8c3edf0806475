from tests.functional.conftest import sample

SUB = "11111111-2222-3333-4444-555555555555"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01"

def test_smoke(app):
    app.configure(RESPONSE_MODE="enforce", CONTAINMENT_RETRY_BACKOFF_SECONDS="0")
    nic = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Network/networkInterfaces/nic1"
    app.fake.add_nic(nic, "eastus")
    app.fake.add_vm(VM, "eastus", [nic])
    r = app.post("/api/alerts/defender", sample("defender-alert-arm.json"))
    print(r.status, r.text)
    iid = r.json()["incidentId"]
    for req in app.fake.requests():
        print(req.method, req.path, req.status)
    print(app.timeline(iid))
    for st in app.durable.instance_ids():
        s = app.durable.status(st)
        print(st, s["runtimeStatus"], str(s["output"])[:1500])
    assert False
