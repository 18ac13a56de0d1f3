"""The web UI in a real headless Chromium: upload a WAV and see a label; sort the sweep leaderboard.

Needs Debian's chromium at /usr/bin/chromium and Playwright for Python (its own browser download is never
used: `executable_path` points at the system browser). Skips with the reason when either is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing

if chromium_missing():
    pytest.skip(chromium_missing(), allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
pytest.importorskip("fastapi", reason="the web UI needs the `ui` extra")

from ser.inference.scorer import load_scorer  # noqa: E402
from ser.serve.app import create_app  # noqa: E402
from tests.helpers.serve import serve_in_background  # noqa: E402
from tests.test_serve import make_sweep_dir  # noqa: E402  (same fake sweep as the API tests)


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory: pytest.TempPathFactory):
    scorer = load_scorer(tiny_run.folds[0].checkpoint)
    sweep = make_sweep_dir(tmp_path_factory.mktemp("browser") / "sweep")
    with serve_in_background(create_app(scorer, sweep_dir=sweep, max_upload_mb=1)) as url:
        yield url, scorer.labels


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        yield page
        browser.close()


def test_upload_shows_label_bars_and_timeline(server, page, tmp_path: Path, wav_writer) -> None:
    url, labels = server
    clip = wav_writer(tmp_path / "speech.wav", seconds=2.5, sample_rate=22050, kind="noise")
    page.goto(f"{url}/")
    page.set_input_files("#file", str(clip))
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#label").strip().lower() in labels
    assert page.locator("#bars .bar").count() == len(labels)
    assert "resampled from 22050 Hz" in page.inner_text("#notes")
    n_windows = int(page.inner_text("#summary").split("·")[1].split()[0])
    assert n_windows >= 2
    assert page.locator("#timeline svg circle").count() == n_windows * len(labels)
    assert page.locator("#timeline svg polyline").count() == len(labels)
    assert page.js_errors == []


def test_bad_upload_shows_the_servers_message(server, page, tmp_path: Path) -> None:
    url, _ = server
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 50)
    page.goto(f"{url}/")
    page.set_input_files("#file", str(text))
    page.wait_for_selector("#error:not([hidden])")
    assert "not a supported audio file" in page.inner_text("#error")
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 1_500_000)  # over the 1 MB limit: refused before uploading
    page.set_input_files("#file", str(big))
    page.wait_for_function("document.getElementById('error').textContent.includes('upload limit')")


def test_sweep_page_rows_sorting_and_images(server, page) -> None:
    url, _ = server
    page.goto(f"{url}/sweep")
    rows = page.locator("#leaderboard tbody tr")
    assert rows.count() == 4
    assert page.locator("#leaderboard tr.best td").nth(0).inner_text() == "t0002"
    first_ids = lambda: page.locator("#leaderboard tbody tr td:first-child").all_inner_texts()  # noqa: E731
    header = page.locator("#leaderboard th[title='val/uar_best']")
    header.click()  # ascending; the failed trial without a value goes last
    assert first_ids() == ["t0003", "t0001", "t0002", "t0004"]
    header.click()  # descending
    assert first_ids() == ["t0002", "t0001", "t0003", "t0004"]
    assert header.get_attribute("aria-sort") == "descending"
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    widths = page.eval_on_selector_all(".plots img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 5 and all(w > 0 for w in widths)
    assert page.js_errors == []
