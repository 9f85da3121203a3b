"""The console's speed (run by hand, not a test): `.venv/bin/python bench/console.py [--rows 1000000] [--jobs 100]`.

A DuckDB file with `--rows` seed-shaped call rows over the last 30 days (40 tenants, 200 routes, sizes with
NULLs), `--jobs` ingest jobs in every status and a few hundred predictions; the real `streamdesk api` started on
it (with an embedded broker); then, signed in as a system_admin (every tenant: the heaviest reader):

* each page's HTML (server-rendered: the page's data call is the page), `--loads` times: p50 / p95;
* in headless Chromium (when installed), first contentful paint of each page, `--paints` loads: median / worst.

Target (issue 13): first paint < 1 s with 1M call rows and 100 jobs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_on_file import api_on  # noqa: E402
from ceiling import fill as fill_calls  # noqa: E402
from ceiling import timed  # noqa: E402

from pipeline.security import Role, mint_token  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.storage.db import connect  # noqa: E402

PAGES = ["pipeline", "calls?window=15m", "calls?window=1h", "calls?window=24h", "calls?window=30d", "ingest",
         "alerts", "predictions"]
STATUSES = ["completed", "completed", "completed", "failed", "running", "paused", "queued", "cancelled"]


# The last 30 days up to now (the console's windows end now), and bodies up to ~400 KiB with a large one in 97.
LAST_MONTH = "now() - to_milliseconds((2592000000 // {rows}) * i)"
SPREAD_BODIES = ("CASE WHEN i % 3 = 0 THEN NULL ELSE (exp(4 + 3 * random()) * (1 + (i % 97 = 0)::INT * 400))::BIGINT "
                 "END")


def fill(db: Path, rows: int, jobs: int) -> None:
    fill_calls(db, rows, created_at=LAST_MONTH, request_size=SPREAD_BODIES)
    con = connect(db)
    for j in range(jobs):
        status = STATUSES[j % len(STATUSES)]
        finished = status in ("completed", "failed", "cancelled")
        con.execute(
            "INSERT INTO ingest_jobs (job_id, tenant, platform, domain, status, priority, options, created_at, "
            "started_at, completed_at, current_step, completed_items, total_items, items_per_second, statistics, "
            "seq) VALUES (?, ?, 'freshdesk', ?, ?, 'normal', '{}', now() - to_minutes(?), now() - to_minutes(?), "
            "CASE WHEN ? THEN now() - to_minutes(?) END, 'collecting_tickets', ?, ?, 9.5, "
            "'{\"tickets_collected\": 100}', 1)",
            [f"bench-job-{j:03d}", str(1 + j % 40), f"co{j % 40}.freshdesk.com", status, 300 - j, 290 - j,
             finished, 280 - j, 100 * j, 100 * j + 500])
    con.execute("CHECKPOINT")
    con.close()


def paints(base: str, token: str, n: int) -> dict[str, tuple[float, float]] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.get(f"{base}/console/login")
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.ID, "sign-in").click()
        time.sleep(1)
        out = {}
        for page in PAGES:
            fcp = []
            for _ in range(n):
                browser.get(f"{base}/console/{page}")
                for _ in range(30):  # the paint entry can land just after the load event
                    got = browser.execute_script("const p = performance.getEntriesByName('first-contentful-paint')"
                                                 "[0]; return p ? p.startTime : null")
                    if got is not None:
                        break
                    time.sleep(0.1)
                fcp.append(got)
            fcp = [f for f in fcp if f is not None]
            out[page] = (statistics.median(fcp), max(fcp)) if fcp else (float("nan"), float("nan"))
        return out
    finally:
        browser.quit()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--loads", type=int, default=20)
    ap.add_argument("--paints", type=int, default=5)
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="streamdesk-console-")) / "data"
    data.mkdir()
    t = time.perf_counter()
    fill(data / "streamdesk.duckdb", args.rows, args.jobs)
    print(f"{args.rows:,} call rows and {args.jobs} jobs written in {time.perf_counter() - t:.0f} s", flush=True)
    with api_on(data) as (client, _):
        token = mint_token(Settings(data_dir=data, _env_file=None).jwt_key(), "bench", "ops", [Role.SYSTEM_ADMIN],
                           3600)
        assert client.post("/console/login", data={"token": token}).status_code == 303  # signed in: a cookie
        print(f"{'page':<22}{'HTML p50 ms':>12}{'p95 ms':>9}{'first paint median ms':>24}{'worst':>8}")
        timings = {page: timed(client, args.loads, "GET", f"/console/{page}") for page in PAGES}
        painted = paints(str(client.base_url).rstrip("/"), token, args.paints) or {}
        for page in PAGES:
            p50, p95 = timings[page]
            fcp = painted.get(page)
            tail = f"{fcp[0]:>24.0f}{fcp[1]:>8.0f}" if fcp else f"{'(no chromium)':>24}"
            print(f"{page:<22}{p50:>12.0f}{p95:>9.0f}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
