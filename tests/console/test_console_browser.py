"""The console in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``) via selenium.

The app runs in-process; ``devtools/console_host.py`` serves it on loopback and signs the browser in
as App Service Authentication would. Screenshots of every page land in ``.artifacts/console/``
(gitignored); docs/console-queue.png and docs/console-incident.png are two of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.conftest import ANALYST, AUDITOR, LEAD, held_isolation
from tests.containment.conftest import actions, quarantine_id
from tests.fixtures.app import ROOT

INSTALL = "install it: apt-get install -y chromium chromium-driver"
if not shutil.which("chromium") or not shutil.which("chromedriver"):
    pytest.skip(f"headless Chromium is not installed ({INSTALL})", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (make venv)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

ARTIFACTS = ROOT / ".artifacts" / "console"
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def site(console):
    from devtools.console_host import ConsoleHost

    with ConsoleHost(console.runtime) as host:
        yield console, host


def shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(max(height + 120, 600), 4000))
    driver.save_screenshot(str(path))
    return path


def submit(driver, element=None) -> None:
    """Click the form's button (or press Enter on ``element``) and wait for the answer page."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    if element is None:
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    else:
        element.send_keys(Keys.ENTER)
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(page))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def follow(driver, link_text: str) -> None:
    """Click a link and wait for the next page: a click can return before the navigation starts (seen under
    load), and reading the page then sees the old or an empty document."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.LINK_TEXT, link_text).click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(page))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def no_console_errors(driver) -> None:
    """Nothing the CSP refused (a refused inline script or style would show here)."""
    logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not logs, logs


def test_lead_approves_a_held_isolation_then_releases_it(site, browser):
    app, host = site
    iid, nics = held_isolation(app)
    host.sign_in(LEAD, ["Approver"])
    browser.get(host.url("/api/console"))
    assert "held for approval" in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "queue")
    follow(browser, iid)
    assert iid in browser.title
    shot(browser, "incident-held")
    follow(browser, "Approve or reject held containment")
    assert "What will happen" in browser.page_source and "isolate-vm" in browser.page_source
    shot(browser, "approve-form")
    browser.find_element(By.NAME, "reason").send_keys("partner agreed on the phone")
    submit(browser)
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "Done: decision recorded" in main, (host.requests, main)
    assert "containment.approved" in main
    nsg = app.fake.get_resource(nics[0])["properties"]["networkSecurityGroup"]["id"]
    assert nsg.lower() == quarantine_id("eastus").lower()
    assert actions(app, iid)["isolate-vm"]["status"] == "contained"
    shot(browser, "incident")

    follow(browser, "Release containment")
    assert nics[0] in browser.page_source and "put back NSG" in browser.page_source
    shot(browser, "release-form")
    browser.find_element(By.NAME, "reason").send_keys("host rebuilt")
    submit(browser)
    assert "Done: release requested" in browser.find_element(By.TAG_NAME, "main").text
    assert actions(app, iid)["isolate-vm"]["status"] == "released"
    assert app.fake.get_resource(nics[0])["properties"].get("networkSecurityGroup") is None
    assert "containment.released" in app.timeline(iid) or "containment.release" in " ".join(app.timeline(iid))
    no_console_errors(browser)


def test_each_role_sees_what_it_may_do(site, browser):
    app, host = site
    iid, _ = held_isolation(app)
    for name, role in ((ANALYST, "Responder"), (AUDITOR, "Auditor")):
        host.sign_in(name, [role])
        browser.get(host.url(f"/api/console/incidents/{iid}"))
        links = {a.text for a in browser.find_elements(By.CSS_SELECTOR, ".buttons a")}
        assert "Approve or reject held containment" not in links and "Release containment" not in links
        assert ("Acknowledge" in links) == (role == "Responder")
        shot(browser, f"incident-{role.lower()}")
    host.sign_in(AUDITOR, ["Auditor"])
    browser.get(host.url("/api/console/audit"))
    assert browser.find_element(By.CSS_SELECTOR, "form[action='/api/evidence']")
    shot(browser, "audit")
    host.sign_in(None)
    browser.get(host.url("/api/console"))
    assert "401" in browser.page_source or "sign-in" in browser.page_source


def test_keyboard_alone_acknowledges_an_incident(site, browser):
    app, host = site
    iid, _ = held_isolation(app)
    host.sign_in(ANALYST, ["Responder"])
    browser.get(host.url("/api/console"))

    def tab_to(predicate, limit: int = 60):
        for _ in range(limit):
            browser.switch_to.active_element.send_keys(Keys.TAB)
            el = browser.switch_to.active_element
            if predicate(el):
                outline = el.value_of_css_property("outline-style")
                assert outline != "none", f"no focus style on {el.tag_name} {el.text!r}"
                return el
        raise AssertionError("never reached by Tab")

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    tab_to(lambda el: el.text == iid).send_keys(Keys.ENTER)
    tab_to(lambda el: el.text == "Acknowledge").send_keys(Keys.ENTER)
    tab_to(lambda el: el.get_attribute("name") == "note").send_keys("called the partner")
    submit(browser, tab_to(lambda el: el.tag_name == "button"))
    assert "Done: acknowledged" in browser.find_element(By.TAG_NAME, "main").text
    assert app.store.get_incident(iid)[0].acknowledged_by == ANALYST


def test_phone_sized_viewport_and_hostile_titles(site, browser):
    app, host = site
    iid, _ = held_isolation(app, title=HOSTILE)
    host.sign_in(LEAD, ["Approver"])
    browser.set_window_size(390, 844)
    for path, name in (("/api/console", "phone-queue"), (f"/api/console/incidents/{iid}", "phone-incident")):
        browser.get(host.url(path))
        assert HOSTILE in browser.find_element(By.TAG_NAME, "main").text  # shown as text, never run
        assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script")
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px on a phone"
        shot(browser, name)
        browser.set_window_size(390, 844)
    no_console_errors(browser)
