"""Take the README's screenshot of the explorer (docs/explorer.png) with the browser test's
tooling: explore_timbre_space.py on the project's data and model, headless Chromium, a click on
a point of the map and a generated note, the page saved as a small PNG.

    python tools/screenshot_explorer.py            # after 'make demo'; needs chromium and chromedriver
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _explorer_browser():
    """tests/explorer_browser.py, the browser test's helpers (loaded by path: tests/ is no package)."""
    spec = importlib.util.spec_from_file_location("explorer_browser", REPO_ROOT / "tests" / "explorer_browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers = _explorer_browser()
browser_missing, chromium, explorer_server, wait_for = (_helpers.browser_missing, _helpers.chromium,
                                                         _helpers.explorer_server, _helpers.wait_for)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=REPO_ROOT, help="project folder (default: the repository)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "explorer.png")
    parser.add_argument("--colours", type=int, default=128, help="palette size of the PNG (default: 128)")
    arguments = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        raise SystemExit(missing)
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with explorer_server(arguments.project, "--runtime", "onnx") as base, chromium(1280, 720) as driver:
        driver.get(base)
        wait_for(driver, "document.body.dataset.ready === '1'")
        points = driver.find_elements(By.CSS_SELECTOR, "#map .scatterlayer .point")
        ActionChains(driver).move_to_element(points[len(points) // 3]).click().perform()
        wait_for(driver, "document.getElementById('reconstruction').src.startsWith('blob:')")
        driver.find_element(By.ID, "set-a").click()
        driver.find_element(By.ID, "generate").click()
        wait_for(driver, "document.getElementById('generated').src.startsWith('blob:')")
        wait_for(driver, "['original', 'reconstruction', 'generated'].every("
                         "(id) => document.getElementById(id).readyState >= 1)")
        driver.execute_script("window.scrollTo(0, 0)")
        image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image.quantize(arguments.colours).save(arguments.output, optimize=True)
    print(f"{arguments.output} ({arguments.output.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
