"""The page at `/` in a real browser: headless Chromium through chromium-driver and
selenium, against a running `outliers serve`.

make test installs Debian's chromium and chromium-driver and selenium==4.39.0 (a
missing browser or driver fails here, it does not skip). A screenshot of the demo is
written to the test's output (its path printed in the summary); with
OUTLIERS_SCREENSHOT=PATH it is written there too (docs/web-page.png is made so).

Run:  .venv/bin/python -m pytest Tests/interop/test_web_page.py
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, record_measurement

WEB = REPO / "web"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def fetch(url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# ----------------------------------------------------------------------------- without a browser

@pytest.mark.parametrize("path,source,media", [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/ui/app.js", "app.js", "text/javascript; charset=utf-8"),
    ("/ui/app.css", "app.css", "text/css; charset=utf-8"),
    ("/ui/icon.svg", "icon.svg", "image/svg+xml"),
])
def test_page_files_are_served_byte_for_byte_with_a_strict_policy(rest, path, source, media):
    status, headers, body = fetch(rest.url + path)
    assert status == 200
    assert body == (WEB / source).read_bytes(), f"{path} differs from web/{source}: run scripts/embed-web"
    assert headers["Content-Type"] == media
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_has_no_inline_script_or_style_and_names_no_other_origin():
    html = (WEB / "index.html").read_text()
    script = (WEB / "app.js").read_text()
    css = (WEB / "app.css").read_text()
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    for text in (html, script, css):
        for scheme in ("http://", "https://", "//cdn", "@import"):
            # The SVG namespace is a name, not a request.
            assert scheme not in text.replace('"http://www.w3.org/2000/svg"', ""), scheme


def test_demo_and_limits(rest):
    status, _, body = fetch(rest.url + "/ui/demo.json")
    assert status == 200
    demo = json.loads(body)
    assert len(demo["metrics"]) == 1000 and demo["metrics"][0]["name"] == "CPU"
    status, _, answer = fetch(rest.url + "/detect", body)
    assert json.loads(answer) == {"indices": [7, 113, 835]}
    status, _, limits = fetch(rest.url + "/ui/limits.json")
    assert json.loads(limits)["maxBodyBytes"] == 16 * 1024 * 1024


def test_no_ui_turns_the_page_off(procs):
    served = procs.serve("--no-ui")
    for path in ("/", "/ui/app.js", "/ui/demo.json"):
        status, _, body = fetch(served.url + path)
        assert status == 404, (path, body)
    status, _, _ = fetch(served.url + "/detect", b"[1,2,100,1,3,200,1]")
    assert status == 200


# ----------------------------------------------------------------------------- in Chromium

@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "chromium is missing: apt-get install chromium (make test installs it)"
    assert Path(CHROMEDRIVER).exists(), "chromedriver is missing: apt-get install chromium-driver (make test installs it)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1700", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, timeout=20, what="the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition(driver)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; status: {status_text(driver)!r}, error: {error_text(driver)!r}")


def status_text(driver):
    return driver.find_element("id", "status").text


def error_text(driver):
    box = driver.find_element("id", "error")
    return box.text if box.is_displayed() else ""


def open_page(driver, rest):
    driver.get(rest.url + "/")
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete")
    driver.get_log("browser")  # start each test with an empty console


def paste(driver, text):
    # Large inputs through script (send_keys types one key at a time).
    driver.execute_script("document.getElementById('input').value = arguments[0];", text)


def detect(driver):
    before = driver.execute_script("return document.getElementById('charts').dataset.drawMs || ''")
    driver.execute_script("document.getElementById('charts').dataset.drawMs = '';")
    driver.find_element("id", "detect").click()
    return wait(driver, lambda d: d.execute_script("return document.getElementById('charts').dataset.drawMs") or error_text(d),
                what=f"an answer (before: {before!r})")


def marks(driver):
    return [int(m.get_attribute("data-index")) for m in driver.find_elements("css selector", ".outlier-mark")]


def table_indices(driver):
    return [int(row.find_elements("tag name", "td")[0].text)
            for row in driver.find_elements("css selector", "#outliers tbody tr")]


def expect_clean_console(driver, rest):
    logs = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not logs, logs
    origins = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
    assert set(origins) <= {rest.url}, origins


def api(rest, body, query=""):
    status, _, answer = fetch(rest.url + "/detect" + query, body.encode())
    return status, json.loads(answer)


def test_demo_then_detect_marks_the_three_planted_outliers(browser, rest, tmp_path):
    open_page(browser, rest)
    browser.find_element("id", "demo").click()
    wait(browser, lambda d: len(d.find_element("id", "input").get_attribute("value")) > 1000, what="the demo data")
    detect(browser)
    assert table_indices(browser) == [7, 113, 835]
    assert marks(browser) == [7, 113, 835]
    assert len(browser.find_elements("css selector", "figure.chart")) == 1
    assert browser.find_elements("css selector", "svg.plot .band"), "the band between the bounds is shaded"
    assert status_text(browser).startswith("3 outliers in 1000 values")
    shot = tmp_path / "web-page.png"
    browser.save_screenshot(str(shot))
    record_measurement(f"screenshot of the demo: {shot}")
    if os.environ.get("OUTLIERS_SCREENSHOT"):
        shutil.copy(shot, os.environ["OUTLIERS_SCREENSHOT"])
    expect_clean_console(browser, rest)


def test_pasted_numbers_and_the_mad_rule_match_the_api(browser, rest):
    open_page(browser, rest)
    browser.find_element("id", "input").send_keys("[1,2,100,1,3,200,1]")
    detect(browser)
    assert marks(browser) == [5]
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element("id", "method")).select_by_value("MAD")
    detect(browser)
    status, answer = api(rest, "[1,2,100,1,3,200,1]", "?method=MAD")
    assert status == 200 and answer["indices"] == [2, 5]
    assert marks(browser) == answer["indices"]
    Select(browser.find_element("id", "method")).select_by_value("IQR")
    browser.find_element("id", "threshold").clear()
    browser.find_element("id", "threshold").send_keys("0.5")
    detect(browser)
    assert marks(browser) == api(rest, "[1,2,100,1,3,200,1]", "?method=IQR&threshold=0.5")[1]["indices"]
    expect_clean_console(browser, rest)


def test_broken_json_shows_the_servers_message(browser, rest):
    open_page(browser, rest)
    paste(browser, '{"metrics":[{"value":1},{"value":true}]}')
    detect(browser)
    status, answer = api(rest, '{"metrics":[{"value":1},{"value":true}]}')
    assert status == 400
    shown = error_text(browser)
    assert "HTTP 400" in shown and answer["message"].split(": ", 1)[1] in shown, (shown, answer)
    assert browser.find_element("css selector", "#error code.path").text == "metrics[1].value"
    paste(browser, "[1, 2,")
    detect(browser)
    _, answer = api(rest, "[1, 2,")
    assert answer["message"] in error_text(browser)
    # A 400 is the server's answer, not a page error: the console stays free of
    # script errors (Chromium logs the failed fetch itself as a network line).
    logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "status of 400" not in e["message"]]
    assert not logs, logs


def test_a_csv_file_with_two_names_grouped_draws_two_charts(browser, rest, tmp_path):
    open_page(browser, rest)
    csv = tmp_path / "two-series.csv"
    rows = ["time,name,value"]
    for i in range(40):
        rows.append(f"2020-05-22T14:{i // 60:02d}:{i % 60:02d}Z,cpu,{10 + (i % 3) + (90 if i == 17 else 0)}")
        rows.append(f"2020-05-22T14:{i // 60:02d}:{i % 60:02d}Z,mem,{50 + (i % 2) + (40 if i == 30 else 0)}")
    csv.write_text("\n".join(rows) + "\n")
    browser.find_element("id", "file").send_keys(str(csv))
    wait(browser, lambda d: d.find_element("id", "input").get_attribute("value").startswith("time,name,value"), what="the file")
    browser.find_element("id", "group").click()
    detect(browser)
    figures = browser.find_elements("css selector", "figure.chart")
    assert [f.get_attribute("data-series") for f in figures] == ["cpu", "mem"]
    # The CSV's request, through the API: the same outliers.
    body = json.dumps({"metrics": [dict(zip(["time", "name", "value"], r.split(","))) | {"value": float(r.split(",")[2])}
                                   for r in rows[1:]]})
    _, answer = api(rest, body, "?group_by_name=true")
    assert sorted(marks(browser)) == answer["indices"] == [34, 61]
    expect_clean_console(browser, rest)


def test_the_table_sorts_and_the_marks_take_the_keyboard(browser, rest):
    from selenium.webdriver.common.keys import Keys
    open_page(browser, rest)
    browser.find_element("id", "demo").click()
    wait(browser, lambda d: len(d.find_element("id", "input").get_attribute("value")) > 1000, what="the demo data")
    detect(browser)
    header = browser.find_element("css selector", "#outliers th button[data-key=value]")
    header.click()
    values = [float(r.find_elements("tag name", "td")[3].text) for r in browser.find_elements("css selector", "#outliers tbody tr")]
    assert values == sorted(values) and len(values) == 3
    assert header.find_element("xpath", "..").get_attribute("aria-sort") == "ascending"
    header.send_keys(Keys.ENTER)  # a button: the keyboard sorts as the mouse does
    values = [float(r.find_elements("tag name", "td")[3].text) for r in browser.find_elements("css selector", "#outliers tbody tr")]
    assert values == sorted(values, reverse=True)
    # Every control has a label.
    unlabelled = browser.execute_script("""
        return [...document.querySelectorAll('input, select, textarea')]
          .filter(e => !document.querySelector(`label[for="${e.id}"]`)).map(e => e.id)""")
    assert unlabelled == []
    # Tab from the Detect button reaches the first outlier mark, whose tooltip shows.
    browser.find_element("id", "detect").send_keys(Keys.TAB)
    active = wait(browser, lambda d: d.switch_to.active_element, what="focus")
    assert active.get_attribute("class") == "outlier-mark", active.get_attribute("outerHTML")[:200]
    tooltip = browser.find_element("id", "tooltip")
    assert tooltip.is_displayed() and "index 7" in tooltip.text and "score" in tooltip.text, tooltip.text
    expect_clean_console(browser, rest)


def test_100000_points_draw_within_a_second(browser, rest):
    open_page(browser, rest)
    browser.execute_script("""
        const values = [];
        for (let i = 0; i < 100000; i++) values.push(Math.round(1000 * (50 + 10 * Math.sin(i / 500) + (i % 7))) / 1000);
        values[12345] = 500; values[99999] = -400;
        document.getElementById('input').value = JSON.stringify(values);""")
    started = time.monotonic()
    detect(browser)
    whole = time.monotonic() - started
    drawn = float(browser.execute_script("return document.getElementById('charts').dataset.drawMs"))
    record_measurement(f"100,000 points: drawn in {drawn:.0f} ms, {whole * 1000:.0f} ms from the click (parse, round trip, draw)")
    assert drawn < 1000, drawn
    assert 12345 in marks(browser) and 99999 in marks(browser)
    # The line is decimated: far fewer vertices than points.
    vertices = browser.execute_script("return document.querySelector('.series-line').getAttribute('d').split('L').length")
    assert vertices < 5000, vertices
    expect_clean_console(browser, rest)


def test_a_million_values_are_refused_in_words_at_once(browser, rest):
    open_page(browser, rest)
    browser.execute_script("""
        const values = [];
        for (let i = 0; i < 1000000; i++) values.push(12.345678901234 + i);
        document.getElementById('input').value = JSON.stringify(values);""")
    started = time.monotonic()
    browser.find_element("id", "detect").click()
    wait(browser, error_text, timeout=20, what="the refusal")
    elapsed = time.monotonic() - started
    assert "too large for this gateway" in error_text(browser) and "1,000,000 values" in error_text(browser), error_text(browser)
    record_measurement(f"1,000,000 values refused in {elapsed:.1f} s")
    assert elapsed < 10
    expect_clean_console(browser, rest)


CONTRAST = """
function luminance(rgb) {
  const [r, g, b] = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function parse(color) {
  const m = color.match(/rgba?\\(([^)]+)\\)/);
  if (!m) return null;
  const parts = m[1].split(',').map(Number);
  return parts.length === 4 && parts[3] === 0 ? null : parts.slice(0, 3);
}
function background(element) {
  for (let e = element; e; e = e.parentElement) {
    const color = parse(getComputedStyle(e).backgroundColor);
    if (color) return color;
  }
  return [255, 255, 255];
}
const failures = [];
let checked = 0;
for (const e of document.querySelectorAll('body *')) {
  const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== '');
  if (!own || e.closest('[hidden]') || e.getClientRects().length === 0) continue;
  const style = getComputedStyle(e);
  const foreground = parse(e instanceof SVGElement ? style.fill : style.color);
  if (!foreground) continue;
  const [a, b] = [luminance(foreground), luminance(background(e))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  checked += 1;
  if (ratio < 4.5) failures.push(`${e.tagName} "${e.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
}
return {failures, checked};
"""


def test_every_text_meets_wcag_aa_contrast(browser, rest):
    open_page(browser, rest)
    browser.find_element("id", "demo").click()
    wait(browser, lambda d: len(d.find_element("id", "input").get_attribute("value")) > 1000, what="the demo data")
    detect(browser)
    paste(browser, "[1, 2,")
    result = browser.execute_script(CONTRAST)
    # Headings, labels, help, the status, captions, axis labels, the table's cells.
    assert result["checked"] >= 30 and result["failures"] == [], result
    browser.find_element("id", "detect").click()
    wait(browser, error_text, what="the error")
    result = browser.execute_script(CONTRAST)
    assert result["failures"] == [], result


def test_a_dropped_file_is_read_and_times_make_the_x_axis(browser, rest):
    open_page(browser, rest)
    csv = "time,name,value\n" + "\n".join(
        f"2020-05-22T14:13:{i:02d}Z,disk,{5 + (i % 2) + (60 if i == 20 else 0)}" for i in range(50)) + "\n"
    # A drop as the browser delivers it: a DataTransfer holding a File.
    browser.execute_script("""
        const transfer = new DataTransfer();
        transfer.items.add(new File([arguments[0]], 'dropped.csv', {type: 'text/csv'}));
        const zone = document.getElementById('drop-zone');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));""", csv)
    wait(browser, lambda d: d.find_element("id", "input").get_attribute("value") == csv, what="the dropped file")
    detect(browser)
    assert marks(browser) == [20]
    labels = [t.text for t in browser.find_elements("css selector", "svg.plot g text")]
    assert "2020-05-22T14:13:00Z" in labels and "2020-05-22T14:13:49Z" in labels, labels
    # Hovering the mark shows its index, time, value and score.
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(browser).move_to_element(browser.find_element("css selector", ".outlier-mark")).perform()
    tooltip = browser.find_element("id", "tooltip")
    wait(browser, lambda d: tooltip.is_displayed(), what="the tooltip")
    assert tooltip.text.splitlines()[:3] == ["index 20", "time 2020-05-22T14:13:20Z", "value 65"], tooltip.text
    assert tooltip.text.splitlines()[3].startswith("score "), tooltip.text
    expect_clean_console(browser, rest)
