"""The README's pictures, from real runs: a vulnerable round's timeline and the matrix heat-map,
cut from the HTML reports by headless chromium (Playwright).

    .venv/bin/python docs/pictures.py --race-lab --out docs/img
    .venv/bin/python docs/pictures.py --attack attack.json --matrix matrix.json --out docs/img

``--race-lab`` starts a lab on a free loopback port, races the inventory's vulnerable strategy
with its recipe (ten buyers, one unit in stock) at its race window (50 ms), and saves the result as
``OUT/attack.json`` before drawing it. ``--matrix`` takes a saved ``toctou matrix`` result.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from toctou.catalogue import fetch_catalogue, recipe_plan
from toctou.engine import RaceResult, run_race
from toctou.lab.process import serve_lab
from toctou.matrix.result import MatrixResult
from toctou.report import render_attack_html, render_matrix_html

WIDTH = 1000  # CSS pixels, drawn at twice that: sharp at README width
TIMELINE = "#race-timeline .plot"
HEATMAP = "#heatmap .plot"


def race_lab(out: Path) -> Path:
    """Race a fresh lab's vulnerable inventory once; the saved result's path."""
    with serve_lab() as lab:
        recipe = fetch_catalogue(lab.base_url)["inventory"].race
        plan = recipe_plan(lab.base_url, recipe, "vulnerable", window_ms=recipe.window_ms)
        result = run_race(plan).redacted()
    if result.verdict.outcome != "race":
        raise SystemExit(f"the race did not show this time: {result.verdict.summary}; run again")
    path = out / "attack.json"
    path.write_text(result.to_json(), encoding="utf-8")
    return path


def screenshot(html: str, selector: str, png: Path, *, chromium: str) -> None:
    """Open ``html`` as a file, draw the plot at ``selector`` and save it as ``png``."""
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        page_file = Path(tmp) / "report.html"
        page_file.write_text(html, encoding="utf-8")
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(
                viewport={"width": WIDTH + 48, "height": 900}, device_scale_factor=2
            )
            page.goto(page_file.resolve().as_uri())
            plot = page.locator(selector).first
            plot.scroll_into_view_if_needed()
            plot.locator(".main-svg").first.wait_for(timeout=15_000)
            page.mouse.move(0, 0)
            page.wait_for_timeout(300)  # plotly's last layout pass
            # A clip of the page, not the element's own screenshot: on a large matrix the cells'
            # plots below keep drawing as they near the viewport, and Playwright would wait for
            # the element to stop moving.
            box = plot.bounding_box()
            if box is None:
                raise SystemExit(f"{selector} is not on the page")
            scroll = page.evaluate("[window.scrollX, window.scrollY]")  # the box is in view
            box = {**box, "x": box["x"] + scroll[0], "y": box["y"] + scroll[1]}  # coordinates
            page.screenshot(path=str(png), clip=box, full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attack", type=Path, help="a saved toctou attack --out result")
    parser.add_argument("--race-lab", action="store_true", help="race a fresh lab for --attack")
    parser.add_argument("--matrix", type=Path, help="a saved toctou matrix result")
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="where PNGs go")
    parser.add_argument(
        "--chromium", default=os.environ.get("TOCTOU_CHROMIUM", "/usr/bin/chromium")
    )
    args = parser.parse_args(argv)
    if not (args.attack or args.race_lab or args.matrix):
        parser.error("give --attack, --race-lab or --matrix")
    args.out.mkdir(parents=True, exist_ok=True)
    attack = race_lab(args.out) if args.race_lab else args.attack
    if attack is not None:
        result = RaceResult.from_json(attack.read_text(encoding="utf-8"))
        png = args.out / "timeline.png"
        screenshot(render_attack_html(result), TIMELINE, png, chromium=args.chromium)
        print(f"{png}: {result.verdict.summary}")
    if args.matrix is not None:
        matrix = MatrixResult.from_json(args.matrix.read_bytes())
        png = args.out / "heatmap.png"
        # Only the heat-map is drawn: the cells' timelines (hundreds of plots) are left out of
        # the page the picture is cut from, so it loads in a second.
        bare = matrix.model_copy(
            update={"cells": tuple(c.model_copy(update={"sample": None}) for c in matrix.cells)}
        )
        screenshot(render_matrix_html(bare), HEATMAP, png, chromium=args.chromium)
        print(f"{png}: {matrix.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
