"""The dashboard in a real headless Chromium: no console errors, the charts show the API's
numbers, filters and the language switch work.

Set TOUCHPOINT_SCREENSHOT_DIR=docs to refresh the screenshots in docs/.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis

from services.profiles.analytics.demo_data import demo_data
from services.profiles.analytics.store import AggregateConfig, AnalyticsStore
from shared.api_keys import KeyStore
from shared.settings import Settings
from tests.analytics.apps import analytics_app
from tests.servers import serving

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip(
        "Chromium and chromedriver are not installed (Debian: apt-get install chromium "
        "chromium-driver; `make install` does it as root)", allow_module_level=True,
    )
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--window-size=1400,2350", "--lang=en-US")


@pytest.fixture(scope="module")
def base_url(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    settings = Settings(redis_url=redis_server.url, redis_namespace=f"t{uuid.uuid4().hex[:10]}")
    now = datetime.now(UTC)
    store = AnalyticsStore(client, settings.redis_namespace, AggregateConfig())
    data = demo_data(6000, int(now.timestamp() * 1000), days=45, seed=21)
    store.record(data.events, data.decisions, now_s=int(time.time()))
    store.close_quiet_journeys()
    with serving(analytics_app(settings, client)) as url:
        yield url
    client.close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("TOUCHPOINT_SCREENSHOT_DIR")
    return Path(folder) if folder else tmp_path_factory.mktemp("screenshots")


def wait_for_load(driver, loads: int) -> None:
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "return window.dashboard && window.dashboard.ready && window.dashboard.loads >= "
        f"{loads}"))
    # charts finish their animation frame after setOption
    time.sleep(0.3)


def series(driver, chart_id: str) -> list[dict]:
    return driver.execute_script(
        "const c = echarts.getInstanceByDom(document.getElementById(arguments[0]));"
        "return c.getOption().series.map(s => ({id: s.id, data: s.data, links: s.links || null}));",
        chart_id,
    )


def api(base_url: str, path: str, **params) -> dict:
    response = httpx.get(f"{base_url}{path}", params=params, timeout=10)
    response.raise_for_status()
    return response.json()


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_dashboard_shows_the_api_numbers_and_filters_change_them(base_url, browser, screenshots):
    browser.get(f"{base_url}/dashboard?lang=en")
    wait_for_load(browser, 1)
    assert console_errors(browser) == []
    assert browser.execute_script("return window.dashboard.errors") == []
    span = browser.execute_script("return window.dashboard.data.touchpoints.filters")
    window = {"from": span["from"], "to": span["to"]}

    # effectiveness table: one row per API row, the same events
    table = api(base_url, "/v1/analytics/touchpoints", **window)
    cells = browser.find_elements(By.CSS_SELECTOR, "#effectiveness tbody td[data-column=events]")
    rows = browser.find_elements(By.CSS_SELECTOR, "#effectiveness tbody tr")
    assert len(rows) == len(table["rows"]) > 5
    shown = {(r.get_attribute("data-touchpoint"), r.get_attribute("data-channel")):
             int(c.get_attribute("data-value")) for r, c in zip(rows, cells, strict=True)}
    assert shown == {(r["touchpoint"], r["channel"]): r["events"] for r in table["rows"]}
    kpi = browser.find_element(By.CSS_SELECTOR, "[data-kpi=events]").get_attribute("data-value")
    assert int(kpi) == table["totals"]["events"]

    # attribution: one series per model with the API's credits
    credit = api(base_url, "/v1/analytics/attribution", **window)
    drawn = {s["id"]: s["data"] for s in series(browser, "chart-attribution")}
    assert list(drawn) == [m["model"] for m in credit["models"]]
    for model in credit["models"]:
        expected = [round(c["conversions"], 3) for c in model["credits"]]
        assert drawn[model["model"]] == pytest.approx(expected, abs=1e-3)

    # Sankey and funnel
    journeys = api(base_url, "/v1/analytics/journeys", **window)
    (sankey,) = series(browser, "chart-sankey")
    assert sorted((link["source"], link["target"], link["value"]) for link in sankey["links"]) == \
        sorted((lk["source"], lk["target"], lk["value"]) for lk in journeys["sankey"]["links"])
    funnel = {s["id"]: s["data"] for s in series(browser, "chart-funnel")}
    assert funnel["customers"] == [s["customers"] for s in journeys["funnel"]]
    assert funnel["dropped_off"] == [s["dropped_off"] for s in journeys["funnel"]]

    # recommendation lift with its intervals
    results = api(base_url, "/v1/analytics/recommendations", **window)
    lift = {s["id"]: s["data"] for s in series(browser, "chart-lift")}
    assert lift["lift"] == pytest.approx([round(a["response_lift"] * 100, 3)
                                          for a in results["actions"]], abs=1e-3)
    assert [w[1] for w in lift["interval"]] == pytest.approx(
        [round(a["response_lift_interval"]["low"] * 100, 3) for a in results["actions"]], abs=1e-3)
    live = float(browser.find_element(By.ID, "live-rate").get_attribute("data-value"))
    assert live >= 0
    time.sleep(1.0)  # let the chart animations finish before the picture
    browser.save_screenshot(str(screenshots / "dashboard-en.png"))

    # a filter: only zalo
    Select(browser.find_element(By.ID, "f-channel")).select_by_value("zalo")
    wait_for_load(browser, 2)
    channels = {r.get_attribute("data-channel")
                for r in browser.find_elements(By.CSS_SELECTOR, "#effectiveness tbody tr")}
    assert channels == {"zalo"}
    zalo = api(base_url, "/v1/analytics/journeys", channel="zalo", **window)
    funnel = {s["id"]: s["data"] for s in series(browser, "chart-funnel")}
    assert funnel["customers"] == [s["customers"] for s in zalo["funnel"]]
    assert funnel["customers"] != [s["customers"] for s in journeys["funnel"]]

    # another: a segment
    Select(browser.find_element(By.ID, "f-channel")).select_by_value("")
    wait_for_load(browser, 3)
    Select(browser.find_element(By.ID, "f-segment")).select_by_value("repeat_buyer")
    wait_for_load(browser, 4)
    repeat = api(base_url, "/v1/analytics/touchpoints", segment="repeat_buyer", **window)
    kpi = browser.find_element(By.CSS_SELECTOR, "[data-kpi=events]").get_attribute("data-value")
    assert int(kpi) == repeat["totals"]["events"] < table["totals"]["events"]
    assert console_errors(browser) == []


def test_sorting_and_the_vietnamese_labels(base_url, browser, screenshots):
    browser.get(f"{base_url}/dashboard?lang=en")
    wait_for_load(browser, 1)
    header = browser.find_element(By.CSS_SELECTOR, "#effectiveness th[data-column=customers]")
    header.click()  # descending
    header = browser.find_element(By.CSS_SELECTOR, "#effectiveness th[data-column=customers]")
    header.click()  # ascending
    values = [int(c.get_attribute("data-value")) for c in browser.find_elements(
        By.CSS_SELECTOR, "#effectiveness tbody td[data-column=customers]")]
    assert values == sorted(values) and values[0] < values[-1]

    browser.find_element(By.ID, "lang-vi").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Phân tích điểm chạm"
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#effectiveness th")]
    assert "Khách hàng" in headers and "Chuyển đổi" in headers
    first = browser.execute_script("return window.dashboard.data.touchpoints.rows[0]")
    names = [td.text for td in browser.find_elements(
        By.CSS_SELECTOR, "#effectiveness tbody td:first-child")]
    assert first["label"]["vi"] in names
    browser.find_element(By.ID, "f-segment")  # the filters are still there
    assert console_errors(browser) == []
    time.sleep(1.5)  # let the charts finish redrawing in the new language
    browser.save_screenshot(str(screenshots / "dashboard-vi.png"))
    browser.find_element(By.ID, "lang-en").click()


def test_the_dashboard_asks_for_a_key_when_the_api_needs_one(redis_server, browser, tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    key = store.create("analyst", ["profiles:read"], datetime.now(UTC))[1]
    settings = Settings(redis_url=redis_server.url, redis_namespace="keyed")
    with serving(analytics_app(settings, key_store=store)) as url:
        browser.get(f"{url}/dashboard?lang=en")
        wait_for_load(browser, 1)
        field = browser.find_element(By.ID, "f-key")
        assert field.is_displayed()
        assert "profiles:read" in browser.find_element(By.ID, "status").text
        field.send_keys(key)
        browser.find_element(By.ID, "f-from").click()  # leaving the field commits it
        wait_for_load(browser, 2)
        assert browser.execute_script("return window.dashboard.data.touchpoints.totals") == {
            "events": 0, "customers": 0, "purchases": 0, "revenue": 0.0,
            "touches_per_purchase": None, "cost": 0.0,
        }
        browser.execute_script("sessionStorage.clear()")
