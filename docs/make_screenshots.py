"""Screenshots of the web UI for the README: docs/screenshots/predict.png and sweep.png.

    python docs/make_screenshots.py CKPT --sweep SWEEP_DIR [--audio FILE] [--out docs/screenshots]

Serves the UI on a free loopback port, drives Debian's headless Chromium with Playwright (no browser
download: `executable_path` points at /usr/bin/chromium), uploads a clip through the page's file input and
captures both pages (the sweep page with its best trial opened and the top three trials compared).
Without --audio the clip is the synthetic corpus's speakers saying one utterance per
emotion of the checkpoint, one after the other, so the timeline shows the emotion changing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def demo_clip(scorer, path: Path) -> Path:
    """One synthetic utterance per label (those the synthesizer knows), 0.3 s of quiet between them."""
    from ser.data.synthetic import synthesize_one

    cfg = scorer.checkpoint.cfg.data.synthetic
    known = set(cfg.labels)
    labels = [label for label in scorer.labels if label in known] or list(cfg.labels)
    gap = np.zeros(int(0.3 * cfg.sample_rate), dtype=np.float32)
    parts = []
    for i, label in enumerate(labels):
        parts += [synthesize_one(cfg, speaker_idx=i % int(cfg.speakers), label=label, index=0), gap]
    sf.write(path, np.concatenate(parts), int(cfg.sample_rate))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--sweep", required=True, help="sweep results directory")
    parser.add_argument("--audio", default=None, help="clip to upload (default: a synthetic demo clip)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "screenshots"))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from ser.inference.scorer import load_scorer
    from ser.serve.app import create_app

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests/helpers
    from tests.helpers.serve import serve_in_background

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scorer = load_scorer(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(args.audio) if args.audio else demo_clip(scorer, Path(tmp) / "demo_emotions.wav")
        app = create_app(scorer, sweep_dir=args.sweep)
        with serve_in_background(app) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
            page.goto(f"{url}/")
            page.set_input_files("#file", str(audio))
            page.wait_for_selector("#result:not([hidden])", timeout=30_000)
            page.wait_for_function("document.getElementById('player').duration > 0")
            page.screenshot(path=str(out / "predict.png"), full_page=True)
            page.goto(f"{url}/sweep")
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            rows = page.locator("#leaderboard tbody tr[data-trial-url]")
            if rows.count():  # open the best trial, compare the top three
                rows.nth(0).locator("td").nth(1).click()
                page.wait_for_selector("#trial-view:not([hidden])")
                for i in range(min(3, rows.count())):
                    rows.nth(i).locator("input.compare").check()
                page.wait_for_function("document.querySelectorAll('#compare-chart polyline').length > 0")
            page.screenshot(path=str(out / "sweep.png"), full_page=True)
            browser.close()
    print(f"wrote {out / 'predict.png'} and {out / 'sweep.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
