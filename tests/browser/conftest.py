"""Headless Chromium (Debian's, through Playwright's sync API) against pytest-django's live_server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's async-safety check would
# otherwise refuse the ORM calls the tests make between page actions.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "pw-raterhub-test"  # tests.factories.UserFactory


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


def _open(browser, request, **context_options):
    context_options.setdefault("viewport", {"width": 1280, "height": 800})
    context = browser.new_context(**context_options)
    page = context.new_page()
    # Generous: a wait that times out fails the test, and a busy machine (CI shares its cores)
    # should not be what fails it. A test that asserts speed measures it; it does not time out.
    page.set_default_timeout(30_000)
    return context, page


@pytest.fixture
def make_page(browser, request):
    """make_page(**context_options) -> page; every page is screenshotted if the test fails."""
    opened = []

    def make(**options):
        context, page = _open(browser, request, **options)
        opened.append((context, page))
        return page

    yield make
    failed = getattr(request.node, "rep_call", None)
    for i, (context, page) in enumerate(opened):
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"), full_page=True)
        context.close()


@pytest.fixture
def page(make_page):
    return make_page()


def log_in(page, base_url: str, email: str, next_url: str = "/rate/") -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}{next_url}*")
