"""A real headless browser for the reports: Debian's chromium driven by Playwright.

Without either, browser tests are skipped with the reason, or fail where every backend is
required (``TOCTOU_TEST_REQUIRE_ALL_BACKENDS``, set in CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["Browser", "Visit", "chromium_path", "launch", "visit"]

CHROMIUM_ENV = "TOCTOU_TEST_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

try:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Request, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]


def _unavailable(reason: str) -> None:
    if os.environ.get("TOCTOU_TEST_REQUIRE_ALL_BACKENDS"):
        pytest.fail(f"{reason}, and every backend is required here")
    pytest.skip(reason)


def chromium_path() -> str:
    """The chromium to drive: ``TOCTOU_TEST_CHROMIUM``, else Debian's ``/usr/bin/chromium``."""
    path = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
    if not (shutil.which(path) or Path(path).is_file()):
        _unavailable(f"no chromium at {path} (apt-get install chromium, or set {CHROMIUM_ENV})")
    if sync_playwright is None:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    return path


@contextmanager
def launch() -> Iterator[Browser]:
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Visit:
    """A page and everything it did: console errors, script errors, requests, dialogs."""

    page: Page
    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def draw_all(self) -> int:
        """Scroll every plot into view (they are drawn when near it); how many were drawn."""
        plots = self.page.locator(".plot[data-figure]")
        for plot in plots.all():
            plot.scroll_into_view_if_needed()
            plot.locator(".main-svg").first.wait_for(timeout=15_000)
        return plots.count()


def visit(browser: Browser, html: str, path: Path) -> Visit:
    """Open ``html`` saved at ``path`` as a file URL, recording what the page does."""
    path.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = Visit(page, path.resolve().as_uri())

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.errors.append(message.text)

    def dialog(d: Dialog) -> None:
        seen.dialogs.append(d.message)
        d.dismiss()

    def request(r: Request) -> None:
        seen.requests.append(r.url)

    page.on("console", console)
    page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
    page.on("dialog", dialog)
    page.on("request", request)
    page.goto(seen.url)
    return seen
