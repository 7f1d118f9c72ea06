"""Tooling for the explorer's real-browser test and the README's screenshot: explore_timbre_space.py
served by uvicorn in its own process, and headless Chromium driven by selenium (the system's
chromium and chromedriver, Debian packages 'chromium' and 'chromium-driver')."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def browser_missing() -> str | None:
    """Why no browser test can run here (None: Chromium, its driver and selenium are there)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        return "no chromium/chromedriver installed (apt-get install chromium chromium-driver)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def explorer_server(project: Path, *arguments, timeout: float = 300):
    """Run explore_timbre_space.py --no-browser in `project` on a free port; yield its URL."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    log = tempfile.TemporaryFile("w+")  # the server's output, shown if it stops; nothing left in `project`
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / "explore_timbre_space.py"), "--no-browser",
                                "--port", str(port), *map(str, arguments)], cwd=project, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the explorer stopped: {log.read()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the explorer did not start in {timeout} s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 800):
    """A headless Chromium (selenium WebDriver) with the system's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    options.binary_location = binary
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, script: str, timeout: float = 60):
    """Wait until the JavaScript expression `script` is truthy in the page; return its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: d.execute_script(f"return {script}"))


#: Fetch an audio element's (blob) source in the page: its type, size and first four bytes.
READ_AUDIO = """
const done = arguments[arguments.length - 1];
fetch(document.getElementById(arguments[0]).src).then((r) => r.blob()).then(async (blob) => {
  const head = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
  done({type: blob.type, size: blob.size, head: String.fromCharCode(...head)});
}).catch((error) => done({error: String(error)}));
"""
