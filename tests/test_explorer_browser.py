"""The explorer in a real browser: headless Chromium loads the page served by uvicorn, a click on
a point of the map gives a playable WAV, a generation request round-trips. Skipped (one line)
where no Chromium is installed."""

from __future__ import annotations

import shutil
import urllib.request

import pytest

from explorer_browser import READ_AUDIO, browser_missing, chromium, explorer_server, wait_for

MISSING = browser_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"browser tests skipped: {MISSING}")


def assert_playable(driver, audio_id: str, base: str):
    wait_for(driver, f"document.getElementById('{audio_id}').src.startsWith('blob:')")
    driver.set_script_timeout(30)
    blob = driver.execute_async_script(READ_AUDIO, audio_id)
    assert blob.get("head") == "RIFF" and blob["type"] == "audio/wav" and blob["size"] > 40_000, blob
    url = driver.execute_script(f"return document.getElementById('{audio_id}').dataset.url")
    with urllib.request.urlopen(base + url.lstrip("/")) as response:
        assert response.headers["Content-Type"] == "audio/wav" and response.read(4) == b"RIFF"
    # The page can play it: the browser decodes the WAV's duration.
    wait_for(driver, f"document.getElementById('{audio_id}').readyState >= 1")
    duration = driver.execute_script(f"return document.getElementById('{audio_id}').duration")
    assert 0.5 < duration < 1.0, duration


def test_click_a_point_and_generate_in_chromium(trained_project, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    with explorer_server(project, "--runtime", "onnx", "--griffin-lim-iters", 4) as base, chromium() as driver:
        driver.get(base)
        wait_for(driver, "document.body.dataset.ready === '1'")
        assert driver.execute_script("return typeof Plotly") == "object"  # served by the app itself
        points = driver.find_elements(By.CSS_SELECTOR, "#map .scatterlayer .point")
        assert len(points) == 21
        ActionChains(driver).move_to_element(points[0]).click().perform()  # a real click on the map
        assert_playable(driver, "original", base)
        assert_playable(driver, "reconstruction", base)
        assert driver.find_element(By.ID, "selected").text != "(none)"
        Select(driver.find_element(By.ID, "descriptor")).select_by_visible_text("Dark")
        driver.find_element(By.ID, "generate").click()  # Dark 100 at the first pitch, E4
        assert_playable(driver, "generated", base)
        assert driver.find_element(By.ID, "message").text == ""
        # A description the data cannot give: the server's message on the page, nothing played.
        driver.execute_script("document.getElementById('magnitude').value = '150'")
        driver.find_element(By.ID, "generate").click()
        message = wait_for(driver, "document.getElementById('message').textContent")
        assert "outside 0..100" in message
