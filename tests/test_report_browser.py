"""The HTML report in a real headless Chromium: every figure decodes and has content, the training curves
and the config are on the page, nothing is fetched from anywhere.

Same set-up as tests/test_browser.py (Debian's chromium through Playwright's `executable_path`); skips
with the reason when either is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, INK_JS, chromium_missing

if chromium_missing():
    pytest.skip(chromium_missing(), allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

from ser.report.html import write_report  # noqa: E402


@pytest.mark.slow
def test_report_page_renders_offline_with_every_figure(tiny_run, tmp_path: Path) -> None:
    report = write_report(tiny_run.run_dir, out=tmp_path / "report.html")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report.as_uri())
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        headings = page.locator("h2").all_inner_texts()
        worst = page.inner_text("#worst-speakers")
        ece = page.inner_text("#ece")
        curves = page.evaluate(INK_JS, "img[alt='training curves']")
        training = page.inner_text("#training + p")
        config_hidden = page.is_hidden("#config + p + details pre")
        page.click("#config + p + details summary")
        config = page.inner_text("#config + p + details pre")
        browser.close()
    assert len(widths) >= 6 and all(w > 100 for w in widths), widths
    assert headings[:5] == ["Test folds", "Classes", "Speakers", "Confidence", "Embeddings"]
    assert curves["width"] > 600 and curves["ink"] > 0.02 and curves["colours"] > 3, curves
    assert "epoch whose checkpoint was kept" in training and "fold 0: epoch " in training
    assert config_hidden and "model:" in config and "trainer:" in config  # folded until opened
    assert "Training" in headings and "Config" in headings
    assert worst.startswith("Worst speakers: s0") and "ECE 0." in ece
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert errors == []
