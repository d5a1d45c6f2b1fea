"""End-to-end: the web UI driven in headless Chromium (Debian's chromium + chromedriver, via Selenium).

The service runs as a real ``modeltrace serve`` process on a loopback port. Skipped when the
browser is not installed (outside CI; .ci/run installs it with apt-get).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modeltrace import api
from tests.registry.serverproc import free_port, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HOSTILE = "<script>alert(1)</script>"


def _require_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        reason = (f"headless Chromium not installed on this machine ({', '.join(missing)} missing; "
                  "apt-get install chromium chromium-driver)")  # fmt: skip
        if os.environ.get("CI"):
            pytest.fail(reason + ": .ci/run must install it")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, lineage_models: dict[str, Path]) -> Iterator[str]:
    _require_browser()
    db = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'registry.sqlite'}"
    with api.open_registry(db) as registry:
        api.registry_add(lineage_models["base"], registry=registry, license="kimi-k2.5", from_scratch=True)
        api.registry_add(lineage_models["stranger"], registry=registry, license="apache-2.0")
        claimed = [("stranger", "finetune")]
        api.registry_add(
            lineage_models["child"], registry=registry, declared_bases=claimed, license="proprietary"
        )
        api.registry_add(lineage_models["grandchild"], name=HOSTILE, registry=registry, detect=False)
    port = free_port()
    process = start_server(db, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1200,1800",
    ):
        options.add_argument(flag)  # fmt: skip
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _then_wait(driver: object, action: object) -> None:
    """Run ``action`` (a click or submit) and wait until the browser has loaded the next page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old_page = driver.find_element(By.TAG_NAME, "html")  # type: ignore[attr-defined]
    action()  # type: ignore[operator]
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(old_page))  # type: ignore[arg-type]


def test_search_open_model_see_conflict_and_obligations(server: str, browser: object) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(server + "/")  # type: ignore[attr-defined]
    assert len(driver.find_elements(By.CSS_SELECTOR, "a.model-link")) == 4  # type: ignore[attr-defined]
    search = driver.find_element(By.ID, "search")  # type: ignore[attr-defined]
    search.send_keys("chi")
    _then_wait(driver, search.submit)
    links = driver.find_elements(By.CSS_SELECTOR, "a.model-link")  # type: ignore[attr-defined]
    assert [link.text for link in links] == ["child"]
    _then_wait(driver, links[0].click)
    assert driver.find_element(By.ID, "model-name").text == "child"  # type: ignore[attr-defined]
    graph = driver.find_element(By.CSS_SELECTOR, "#graph svg.lineage")  # type: ignore[attr-defined]
    assert graph.find_elements(By.CSS_SELECTOR, "line.edge.detected.conflict")
    assert graph.find_elements(By.CSS_SELECTOR, "line.edge.declared")
    assert graph.find_elements(By.CSS_SELECTOR, "g.node.conflict")
    conflicts = driver.find_element(By.ID, "conflicts").text  # type: ignore[attr-defined]
    assert "declared base stranger, detected base" in conflicts
    assert driver.find_elements(By.CSS_SELECTOR, "svg.heatmap rect")  # type: ignore[attr-defined]
    revenue = driver.find_element(By.ID, "monthly_revenue")  # type: ignore[attr-defined]
    revenue.clear()
    revenue.send_keys("80000000")
    _then_wait(driver, driver.find_element(By.ID, "check").click)  # type: ignore[attr-defined]
    obligations = driver.find_element(By.ID, "obligations").text  # type: ignore[attr-defined]
    assert "Kimi K2.5" in obligations and "kimi-k2.5" in obligations
    revenue = driver.find_element(By.ID, "monthly_revenue")  # type: ignore[attr-defined]
    revenue.clear()
    revenue.send_keys("1000")
    _then_wait(driver, driver.find_element(By.ID, "check").click)  # type: ignore[attr-defined]
    assert "Kimi K2.5" not in driver.find_element(By.ID, "licence").text  # type: ignore[attr-defined]


def test_hostile_name_renders_as_text(server: str, browser: object) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(server + "/?q=script")  # type: ignore[attr-defined]
    link = driver.find_element(By.CSS_SELECTOR, "a.model-link")  # type: ignore[attr-defined]
    assert link.text == HOSTILE
    _then_wait(driver, link.click)
    assert driver.find_element(By.ID, "model-name").text == HOSTILE  # type: ignore[attr-defined]
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # type: ignore[attr-defined]  # noqa: B018
    assert "&lt;script&gt;" in driver.page_source  # type: ignore[attr-defined]
    assert not driver.find_elements(By.XPATH, "//script")  # type: ignore[attr-defined]
