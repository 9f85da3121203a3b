"""The console in a real browser (headless Chromium through Selenium) against the running system: sign in, open
every page, check the figures shown equal the REST and SQL figures, pause a running ingest job with its button
and see it paused, watch a live part update without reloading, sign out. Screenshots of every page go to
`artifacts/screenshots/` (kept out of git).

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the test is skipped,
unless STREAMDESK_REQUIRE_BROWSER=1 (CI sets it), when it fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import httpx
import pytest
from kafka import KafkaProducer

from pipeline.settings import read_broker_file
from simulators.sleep_cohort import generate_cohort
from tests.helpers import REPO, call_event, wait_for

pytestmark = pytest.mark.e2e
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
TENANT = "browser-t"  # a tenant of its own: 400 posted calls, plus the api's record of that one POST
SLEEP_TENANT = "browser-s"  # the prediction's
COMPANY = {"X-Company-ID": "browserco", "X-Platform": "freshdesk", "X-Domain": "browserco.freshdesk.com",
           "X-API-Key": "your_api_key"}


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (CHROMIUM and DRIVER):
        if os.environ.get("STREAMDESK_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
        pytest.skip("no chromium / chromedriver on this machine")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--lang=en-US"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver, name: str) -> None:
    """A full-page screenshot: the window grown to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(800, height + 20), 6000))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def text(driver, element_id: str) -> str:
    """An element's text, read in one step (the live stream may swap the element between two WebDriver calls)."""
    found = driver.execute_script("const e = document.getElementById(arguments[0]); return e && e.innerText",
                                  element_id)
    assert found is not None, f"no #{element_id} on {driver.current_url}"
    return found.strip()


def shown(driver, element_id: str) -> str:
    """As `text`, but "" while the element is not there (a page still loading): for waits."""
    found = driver.execute_script("const e = document.getElementById(arguments[0]); return e && e.innerText",
                                  element_id)
    return (found or "").strip()


def press(driver, element_id: str) -> None:
    """Click a button as a person would, found and clicked in one step (the live stream may redraw the page)."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id)  # it is there (a missing button fails here, naming it)
    driver.execute_script("document.getElementById(arguments[0]).click()", element_id)


def test_the_console_in_a_browser(live, browser):
    from selenium.webdriver.common.by import By

    admin = live.token("ops", "ops", "system_admin")
    bearer = {"Authorization": f"Bearer {admin}"}
    # Data a user would have: calls of one tenant (some large), and an ingest job that runs for minutes.
    service = {"Authorization": f"Bearer {live.token('gw', TENANT, 'service_account')}"}
    events = [call_event(i, tenant_id=TENANT, api_call_history_id=f"browser-{i}", created_at=None,
                         request_size_bytes=(3 << 20) if i % 10 == 0 else 500) for i in range(400)]
    assert live.request("POST", "/v1/call-histories", json=events, headers=service).status_code == 202
    sql = {"query": f"SELECT count(*) AS n FROM sys_api_call_histories WHERE tenant_id = '{TENANT}'"}
    wait_for(lambda: live.request("POST", "/v1/sql", json=sql, headers=bearer).json()["rows"][0][0] == 401, 60,
             "the calls stored")
    # A user's sleep records and a prediction (seed 004), and a broken message on calls.raw with a secret in it.
    # (a tenant of their own: the api records its own calls too, and the calls tenant's count must stay 401)
    user = generate_cohort(1, days=14, seed=21, tenant=SLEEP_TENANT)[0]
    records = [r.model_dump(mode="json") for r in user.records]
    sleep_service = {"Authorization": f"Bearer {live.token('gw', SLEEP_TENANT, 'service_account')}"}
    assert live.request("POST", "/v1/sol-cod/sleep-records", json=records,
                        headers=sleep_service).status_code == 202
    stored = {"query": f"SELECT count(*) FROM sleep_records WHERE tenant = '{SLEEP_TENANT}'"}
    wait_for(lambda: live.request("POST", "/v1/sql", json=stored, headers=bearer).json()["rows"][0][0]
             >= len(records), 60, "the sleep records stored")
    staff = {"Authorization": f"Bearer {live.token('doc', SLEEP_TENANT, 'system_admin')}"}
    predicted = live.request("POST", "/v1/sol-cod/predict", json={"userId": user.user_id}, headers=staff)
    assert predicted.status_code == 202, predicted.text
    prediction_id = predicted.json()["data"]["predictionId"]
    wait_for(lambda: live.request("GET", f"/v1/sol-cod/predictions/{prediction_id}", headers=staff)
             .json()["data"]["status"] == "COMPLETED", 60, "the prediction completed")
    producer = KafkaProducer(bootstrap_servers=read_broker_file(live.data)["bootstrap"])
    producer.send("calls.raw", b'{"path": "/x?api_key=sk-browser-secret", "broken": ')
    producer.flush()
    producer.close()
    job = live.request("POST", "/ingest/jobs", headers=COMPANY,
                       json={"include_kb": False, "batch_size": 10, "auto_start": True}).json()
    job_id = job["job_id"]
    company = {k: COMPANY[k] for k in ("X-Company-ID", "X-API-Key")}
    wait_for(lambda: live.request("GET", f"/ingest/jobs/{job_id}", headers=company).json()["status"] == "running",
             60, "the job running")

    # Signed out, every page is the sign-in form; a wrong token is refused on the page.
    browser.get(f"{live.base}/console/calls")
    assert browser.find_element(By.ID, "token")
    browser.find_element(By.ID, "token").send_keys("not-a-token")
    browser.find_element(By.ID, "sign-in").click()
    wait_for(lambda: "not accepted" in shown(browser, "login-error"), 10, "the refusal on the sign-in page")
    shot(browser, "00-sign-in-refused")

    # A company admin of another tenant signs in to... its own job only, so sign in as the job's company admin.
    token = live.token("ops", "browserco", "system_admin")
    wait_for(lambda: browser.find_elements(By.ID, "token"), 10, "the sign-in form again")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "sign-in").click()
    wait_for(lambda: browser.title.startswith("Calls"), 10, "the calls page after signing in")
    assert "streamdesk_console" not in browser.execute_script("return document.cookie")  # HttpOnly

    # Calls: the page's figures are the REST route's.
    browser.get(f"{live.base}/console/calls?window=24h&tenant={TENANT}")
    stats = live.request("GET", "/v1/call-histories/stats", params={"tenant_id": TENANT}, headers=bearer).json()
    assert text(browser, "kpi-count") == f"{stats['total']['count']:,}" == "401"
    assert text(browser, "large-count") == f"{stats['sizes']['large_requests']['count']:,}" == "40"
    p95 = stats["total"]["p95_ms"]
    assert text(browser, "kpi-p95") == f"{p95:,.1f} ms"
    rows = browser.execute_script("return document.querySelectorAll('#routes tbody tr').length")
    assert rows == min(10, len(stats["routes"]))
    shot(browser, "02-calls")

    # Pipeline: the worker that runs the job is alive, calls.raw counted.
    browser.get(f"{live.base}/console/pipeline")
    assert "alive" in text(browser, "workers") and "calls.raw" in text(browser, "topics")
    shot(browser, "01-pipeline")

    # Ingest: the running job, then its page; press pause and see it paused, as the REST route reports.
    browser.get(f"{live.base}/console/ingest")
    assert job_id in text(browser, "jobs")
    shot(browser, "03-ingest")
    browser.get(f"{live.base}/console/ingest/{job_id}")
    assert text(browser, "job-status") == "running"
    press(browser, "action-pause")
    wait_for(lambda: shown(browser, "job-status") == "paused", 10, "the job page saying paused")
    rest = live.request("GET", f"/ingest/jobs/{job_id}", headers=company).json()
    assert rest["status"] == "paused"
    assert text(browser, "job-items").split()[0].replace(",", "") == str(rest["progress"]["completed_items"])
    shot(browser, "04-job-paused")

    # Live: the job resumed through the REST route shows up as running on the open page, with no reload.
    marker = browser.execute_script("window.__noReload = 1; return window.__noReload")
    live.request("POST", f"/ingest/jobs/{job_id}/control", headers=company, json={"action": "resume"})
    wait_for(lambda: shown(browser, "job-status") == "running", 15, "the live part updating")
    assert browser.execute_script("return window.__noReload") == marker  # the same page, never reloaded
    press(browser, "action-cancel")
    wait_for(lambda: shown(browser, "job-status") == "cancelled", 10, "the job cancelled")

    # Alerts and predictions open and say what they measure; the debate replays round by round.
    browser.get(f"{live.base}/console/alerts")
    assert "Job failure rate" in text(browser, "alerts")
    shot(browser, "05-alerts")
    browser.get(f"{live.base}/console/predictions")
    assert user.user_id in text(browser, "predictions")
    shot(browser, "06-predictions")
    browser.get(f"{live.base}/console/predictions/{prediction_id}")
    debate = live.request("GET", f"/v1/sol-cod/predictions/{prediction_id}", headers=staff).json()["data"]
    assert text(browser, "debate-status") == "COMPLETED"
    shown_sol = float(text(browser, "debate-sol").split()[0].replace(",", ""))
    assert abs(shown_sol - debate["result"]["solScore"]) <= 0.5  # the REST answer is in whole minutes
    assert int(text(browser, "debate-rounds")) == debate["debateInfo"]["totalRounds"]
    assert browser.execute_script("return document.querySelectorAll('#rounds tbody tr').length") == int(
        text(browser, "debate-rounds"))
    shot(browser, "07-debate")

    # A dead letter: its reason on the Pipeline page, its bytes one click away, the secret masked.
    wait_for(lambda: browser.get(f"{live.base}/console/pipeline") or "sk-browser" not in browser.page_source
             and "calls.raw" in shown(browser, "dead-letters"), 30, "the dead letter listed")
    letter = browser.execute_script("return document.querySelector('#dead-letters a').getAttribute('href')")
    browser.get(f"{live.base}{letter}")
    assert "REDACTED" in text(browser, "bytes") and "sk-browser-secret" not in browser.page_source
    assert text(browser, "reason")
    shot(browser, "08-dead-letter")

    # Signing out ends the session: the next page is the sign-in form again.
    browser.get(f"{live.base}/console/pipeline")
    browser.find_element(By.ID, "sign-out").click()
    wait_for(lambda: browser.find_elements(By.ID, "token"), 10, "the sign-in form")
    browser.get(f"{live.base}/console/pipeline")
    assert browser.find_elements(By.ID, "token")
    assert httpx.get(f"{live.base}/console/pipeline").status_code == 401
