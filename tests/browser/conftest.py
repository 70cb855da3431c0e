"""Real-browser fixtures: Playwright (python) driving Debian's chromium. Never downloads one.

``browser`` (session) and ``page`` (per test, fresh context); ``login(page, base_url,
username, password)``. Tests using them need ``live_server`` (so ``transactional_db``)
and the ``browser`` marker. Skips when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("MAHTQA_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"

# Playwright's sync API runs an event loop in this thread; the test itself still talks
# to the database synchronously (fixtures, assertions), which Django allows with this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (CI installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def login(page, base_url: str, username: str, password: str, next_path: str = "/") -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def drag_landmark(page, abbr: str, dx: float, dy: float) -> None:
    """Drag a landmark's marker by (dx, dy) screen pixels, in two legs as a hand would,
    and wait for the server's recomputation."""
    box = page.locator(f"g.lm[data-abbr={abbr}] circle.ring").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + dx / 2, cy + dy / 2, steps=5)
    page.mouse.move(cx + dx, cy + dy, steps=5)
    page.mouse.up()
    page.wait_for_selector("#analysis[data-recomputed='1']")
