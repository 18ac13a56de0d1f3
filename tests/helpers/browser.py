"""The system Chromium the browser tests drive through Playwright (never Playwright's own download)."""

from __future__ import annotations

import os

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


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found: apt-get install chromium to run the browser tests"
    return None


# JavaScript for `page.evaluate(INK_JS, selector)`: how many pixels of the element (an <img> or <canvas>)
# differ from its top-left pixel's colour, and its drawn size; proves a picture has content, not only a box.
INK_JS = """(selector) => {
  const node = document.querySelector(selector);
  if (!node) return null;
  const w = node.naturalWidth || node.width, h = node.naturalHeight || node.height;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(node, 0, 0);
  const data = ctx.getImageData(0, 0, w, h).data;
  let ink = 0;
  const colours = new Set();
  for (let i = 0; i < data.length; i += 4) {
    const d = Math.abs(data[i] - data[0]) + Math.abs(data[i + 1] - data[1]) + Math.abs(data[i + 2] - data[2]);
    if (d > 30) ink++;
    if (i % 64 === 0) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  }
  const box = node.getBoundingClientRect();
  return { width: w, height: h, shownWidth: box.width, shownHeight: box.height, ink: ink / (w * h),
    colours: colours.size };
}"""
