"""The web UI in a real headless Chromium: upload a WAV and see its label, probabilities, player,
spectrogram and timeline strip; sort the sweep leaderboard, open a trial's curves and config, compare
trials on one plot. Set SER_SCREENSHOT_DIR to also save what the browser drew as PNGs.

Needs Debian's chromium at /usr/bin/chromium and Playwright for Python (its own browser download is never
used: `executable_path` points at the system browser). Skips with the reason when either is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, INK_JS, chromium_missing

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


def screenshot(page, name: str) -> None:
    folder = os.environ.get("SER_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def box(page, selector: str) -> dict[str, float]:
    return page.locator(selector).bounding_box()


@pytest.mark.slow
def test_upload_shows_label_bars_player_spectrogram_and_timeline(
    server, page, tmp_path: Path, wav_writer
) -> None:
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
    # the clip plays back: the player holds the uploaded bytes and knows their length
    page.wait_for_function("document.getElementById('player').duration > 0")
    assert page.get_attribute("#player", "src").startswith("blob:")
    assert abs(page.evaluate("document.getElementById('player').duration") - 2.5) < 0.05
    # the log-mel picture: one column per 10 ms at the model's rate, 64 bands, drawn with many colours
    picture = page.evaluate(INK_JS, "#spectrogram")
    assert (picture["width"], picture["height"]) == (1 + int(2.5 * 16000) // 160, 64), picture
    assert picture["ink"] > 0.3 and picture["colours"] > 20 and picture["shownWidth"] > 400, picture
    bars, spectro = box(page, "#bars"), box(page, "#spectrogram")
    assert spectro["x"] >= bars["x"] + bars["width"] - 1  # beside the probabilities, not below them
    # the timeline as a strip over the spectrogram: one segment per window, coloured by its top label
    segments = page.locator("#strip span")
    assert segments.count() == n_windows
    assert {segments.nth(i).get_attribute("data-label") for i in range(n_windows)} <= set(labels)
    strip = box(page, "#strip")
    assert strip["y"] + strip["height"] <= spectro["y"] + 1 and abs(strip["width"] - spectro["width"]) < 2
    assert "s" in page.inner_text("#time-axis") and "kHz" in page.inner_text("#fmax")
    screenshot(page, "predict")
    # one window: no strip, the spectrogram still drawn
    page.set_input_files("#file", str(wav_writer(tmp_path / "short.wav", seconds=0.4, kind="tone")))
    page.wait_for_function("document.getElementById('summary').textContent.includes('1 window')")
    assert page.locator("#strip span").count() == 0
    assert page.evaluate(INK_JS, "#spectrogram")["width"] == 1 + int(0.4 * 16000) // 160
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


def test_sweep_row_opens_its_curves_and_config_and_ticked_trials_compare(server, page) -> None:
    url, _ = server
    page.goto(f"{url}/sweep")
    assert page.is_hidden("#trial-view") and page.is_hidden("#compare-view")
    # the best config: searched values and other differences first, the full YAML folded
    assert "model.depth" in page.inner_text("#best-searched") and "6" in page.inner_text("#best-searched")
    assert "model.pool" in page.inner_text("#best-changes") and page.is_hidden("#best-yaml pre")
    page.locator("#leaderboard tr[data-trial='t0002'] td").nth(2).click()
    page.wait_for_selector("#trial-view:not([hidden])")
    assert page.inner_text("#trial-id") == "t0002" and "epoch 8" in page.inner_text("#trial-summary")
    for chart in ("#trial-loss", "#trial-metric"):
        assert page.locator(f"{chart} polyline.series").count() == 2  # train and val
        assert page.locator(f"{chart} .xtick").all_text_contents() == [str(e) for e in range(1, 9)]
        assert page.locator(f"{chart} circle").count() >= 16
    ring = page.locator("#trial-metric .selected-epoch-ring title").text_content()
    assert "selected epoch 8" in ring
    assert "optim.lr" in page.inner_text("#trial-searched") and "attention" in page.inner_text(
        "#trial-changes"
    )
    page.click("#trial-view details summary")
    assert "pool: attention" in page.inner_text("#trial-config")
    screenshot(page, "sweep_trial")
    page.locator("#leaderboard tbody tr", has_text="t0004").locator("td").nth(
        1
    ).click()  # no trial file: nothing opens, no error
    assert page.inner_text("#trial-id") == "t0002"
    # compare two trials on one plot, by the sweep metric (selected epochs ringed), then by another key
    page.check("#leaderboard tr[data-trial='t0001'] input.compare")
    page.check("#leaderboard tr[data-trial='t0003'] input.compare")
    page.wait_for_function("document.querySelectorAll('#compare-chart polyline.series').length === 2")
    legend = page.locator("#compare-chart .legend-label").all_text_contents()
    assert legend == ["t0001 (depth=4, lr=0.001)", "t0003 (depth=2, lr=0.01)"]
    assert page.locator("#compare-chart .selected-epoch-ring").count() == 2
    assert page.locator("#compare-chart circle:not(.selected-epoch-ring)").count() == 8 + 2
    page.select_option("#compare-metric", "val/loss")
    page.wait_for_function(
        "document.querySelector('#compare-chart svg').getAttribute('aria-label') === 'val/loss per epoch'"
    )
    assert page.locator("#compare-chart polyline.series").count() == 2
    assert page.locator("#compare-chart .selected-epoch-ring").count() == 0
    screenshot(page, "sweep_compare")
    page.click("#compare-clear")
    assert page.is_hidden("#compare-view")
    assert page.js_errors == []
