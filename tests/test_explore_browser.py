"""genlab explore end to end: the real command on a free port, a tiny trained VAE, headless Chromium
driven by Selenium. Moving the interpolation slider must change the image, and the PNG the page
shows must equal, pixel for pixel, what the Python API decodes for the same parameters; a select set
by a script (a ``change`` event, no ``input``) must re-render too, and the console must stay free of errors.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (``.ci/run`` installs
them); without them the test skips and says how to install them. ``GENLAB_EXPLORE_SCREENSHOT=FILE``
also saves a screenshot of the page, and ``GENLAB_EXPLORE_RUN=RUN`` uses a trained run with a 2-D
latent on 28x28 digits instead of the tiny one (the README's screenshot:
``GENLAB_EXPLORE_RUN=runs/vae-2d GENLAB_EXPLORE_SCREENSHOT=docs/explore.png pytest tests/test_explore_browser.py``).
"""
from __future__ import annotations

import base64
import io
import os
import shutil
from urllib.parse import parse_qs

import numpy as np
import pytest
import torch

from genlab.explore import open_run, seed_codes
from genlab.latent import lerp

from test_explore import cell, decoded, read_line, start_cli, stop, train_tiny_vae

INSTALL = ("needs Chromium, its driver and Selenium: apt-get install -y chromium chromium-driver && "
           "pip install selenium (or pip install -e '.[test]')")


def browser_or_skip():
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip(INSTALL)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip(INSTALL)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1240", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read at the end
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    browser.set_script_timeout(60)
    return browser


def shown_png(browser, element_id: str) -> np.ndarray:
    """The exact bytes of the PNG an <img> shows (its blob: URL fetched inside the page), decoded."""
    from PIL import Image

    script = """const done = arguments[arguments.length - 1];
    fetch(document.getElementById(arguments[0]).src).then((r) => r.arrayBuffer()).then((buffer) => {
      let text = ""; new Uint8Array(buffer).forEach((b) => { text += String.fromCharCode(b); }); done(btoa(text));
    }).catch((error) => done("failed: " + error));"""
    reply = browser.execute_async_script(script, element_id)
    assert not reply.startswith("failed"), reply
    data = base64.b64decode(reply)
    return np.asarray(Image.open(io.BytesIO(data)))


def wait_for_query(browser, element_id: str, contains: str) -> dict[str, str]:
    from selenium.webdriver.support.ui import WebDriverWait

    def query(driver):
        text = driver.find_element("id", element_id).get_attribute("data-query") or ""
        return text if contains in text else False

    text = WebDriverWait(browser, 60).until(query, f"#{element_id} never showed a render with {contains!r}")
    return {k: v[0] for k, v in parse_qs(text).items()}


def test_slider_changes_the_image_and_the_page_shows_what_python_decodes(tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser = browser_or_skip()
    process = None
    try:
        run = os.environ.get("GENLAB_EXPLORE_RUN") or train_tiny_vae(tmp_path / "vae")
        process = start_cli(str(run), "--port", "0")
        url = read_line(process).split(" at ")[1].split()[0]
        browser.get(url)
        before = wait_for_query(browser, "interpolate-img", "t=0.5")
        first = shown_png(browser, "interpolate-img")

        slider = browser.find_element("id", "interpolate-t")
        for _ in range(3):
            slider.send_keys(Keys.ARROW_RIGHT)  # step 0.05: 0.5 -> 0.65, one render per move
        params = wait_for_query(browser, "interpolate-img", "t=0.65")
        shown = shown_png(browser, "interpolate-img")
        assert params["t"] == slider.get_attribute("value") == "0.65" and params["a"] == before["a"]
        assert not np.array_equal(shown, first)  # the frame moved along the path

        explorer = open_run(str(run))
        assert np.array_equal(shown, explorer.render(params))  # the same function the server called
        z0, z1 = seed_codes(explorer.model, [int(params["a"]), int(params["b"])])
        assert np.array_equal(cell(shown, 1, 28), decoded(explorer.model, lerp(z0, z1, 0.65)))  # the model's own decode

        # a script that sets a select and fires "change" (as autofill, extensions and tests do) re-renders too
        browser.execute_script("""const select = document.getElementById("interpolate-b");
            select.value = "5"; select.dispatchEvent(new Event("change"));""")
        changed = wait_for_query(browser, "interpolate-img", "b=5")
        assert changed["t"] == "0.65" and changed["a"] == params["a"]
        assert np.array_equal(shown_png(browser, "interpolate-img"), explorer.render(changed))

        # a click on the latent map decodes the code under the pointer
        latent_map = browser.find_element("id", "map-img")
        wait_for_query(browser, "map-img", "view=map")
        ActionChains(browser).move_to_element_with_offset(latent_map, 40, -60).click().perform()
        point = wait_for_query(browser, "point-img", "view=point")
        code = torch.tensor([float(point["x"]), float(point["y"])])
        width = latent_map.size["width"]
        extent = float(browser.find_element("id", "map-extent").get_attribute("value"))
        assert float(point["x"]) == pytest.approx(2 * extent * 40 / width, abs=2 * extent * 2 / width)
        assert np.array_equal(shown_png(browser, "point-img")[2:30, 2:30], decoded(explorer.model, code))

        errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors  # e.g. no 404 for /favicon.ico in the console

        if os.environ.get("GENLAB_EXPLORE_SCREENSHOT"):
            browser.save_screenshot(os.environ["GENLAB_EXPLORE_SCREENSHOT"])
        out, err = stop(process)
        assert process.returncode == 0 and "stopped" in out and "Traceback" not in err
    finally:
        browser.quit()
        if process is not None:
            process.kill()
