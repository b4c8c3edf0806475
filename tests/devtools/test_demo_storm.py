"""`make demo`'s "Alert storm" section (devtools/demo_storm.py): the storm through the app harness, the figures
and lines the report prints, and nothing left changed for what runs after it."""

from __future__ import annotations

import json

from tests.fixtures.app import APP_SETTINGS, ROOT


def test_demo_alert_storm_pages_per_storm_and_tells_every_incident(app, tmp_path):
    from devtools import demo_storm

    registry = json.loads((ROOT / "config/partners.json").read_text())
    registry["partners"].append(demo_storm.PARTNER)  # as the demo's copy of the registry has it
    path = tmp_path / "partners.json"
    path.write_text(json.dumps(registry))
    app.configure(PARTNERS_FILE=str(path))
    app.fake.add_mailbox(APP_SETTINGS["MAIL_SENDER"])
    notify = app.context.notifications.context
    clock = notify.clock

    s = demo_storm.run(app.runtime, app.context, app.fake)

    assert s["accepted"] == s["alerts"] == 40
    assert s["outcomes"] == {"created": 32, "grouped": 4, "duplicate": 4}
    assert s["incidents"] == s["hosts"] == 32  # one incident per host: grouping holds in a burst
    assert s["priorities"] == {"P1": 4, "P3": 28}
    assert s["told"].get("not told", 0) == 0 and sum(s["told"].values()) == 32
    assert s["told"].get("storm summary", 0) > 0  # the storm was summarised, not mailed one by one
    assert s["summaries"] >= 1 and s["singles"] + s["summaries"] == s["emails"] < s["incidents"]
    assert s["busiestMinute"] <= 10
    assert set(s["calls"]) == {c["phone"] for c in demo_storm.PARTNER["emergencyContacts"]}
    assert all(1 <= n <= 4 for n in s["calls"].values())  # one pager per number, at most four calls an hour
    assert s["firstCallAnnounced"] == dict.fromkeys(s["calls"], 4)  # the first call announces every P1

    section = demo_storm.render(s)
    assert "alerts accepted: 40 of 40" in section
    assert "incidents opened: 32 (4 P1, 28 P3) for 32 distinct hosts" in section
    assert "incidents told: 32 of 32" in section
    assert "the first announcing 4 incident(s)" in section

    # Nothing leaks into what runs after the section: the notification clock and the host's auto-run are back.
    assert notify.clock is clock and app.runtime.auto_run is True
