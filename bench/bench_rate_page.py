"""The rating page as one rater feels it: its weight and the time from Enter to the next one.

gunicorn (DEBUG off, WhiteNoise serving the collected static files, 2 sync workers) on a fresh
SQLite database of the demo project (`seed_demo`) in a temporary directory, so it needs no
server of its own. Headless Chromium (Playwright) logs in as rater1 and:
- weighs the page: every byte the first load fetched (HTML, CSS, JS, favicon), uncompressed
  and on the wire; the budget is 100 KB uncompressed with no front-end framework (htmx and
  the page's own scripts only);
- rates RATE_COMPARISONS comparisons with the three keys `1 Q Enter` and records, for each,
  the time from the Enter keydown to the next comparison settled on screen (the next frame
  after htmx's afterSettle), measured in the page. Reported: median and p95 (no assertion:
  it depends on the machine; the issue's goal is a median under 100 ms).

Writes bench/results/rate_page.json. Run: `.venv/bin/python -m bench rate_page`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import common

RATE_COMPARISONS = int(os.environ.get("BENCH_RATE_COMPARISONS", "40"))
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PAGE_BUDGET_BYTES = 100_000
DEMO_EMAIL, DEMO_PASSWORD = "rater1@example.com", "raterhub-demo"

# In the page: the time from the Enter keydown to the frame after the next panel settled.
_ARM = """() => {
  window.__enterToNext = undefined;
  const prev = document.getElementById('panel').dataset.assignment;
  let t0 = null;
  document.addEventListener('keydown', function enter(e) {
    if (e.key !== 'Enter') return;
    t0 = e.timeStamp;
    document.removeEventListener('keydown', enter, true);
  }, true);
  document.addEventListener('htmx:afterSettle', function settled() {
    const p = document.getElementById('panel');
    if (!p || p.dataset.assignment === prev) return;
    document.removeEventListener('htmx:afterSettle', settled);
    requestAnimationFrame(() => { window.__enterToNext = performance.now() - t0; });
  });
}"""


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DEBUG="0",
        SECRET_KEY="bench-rate-page-not-secret",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        RATERHUB_VAR_DIR=str(tmp),
        STATIC_ROOT=str(tmp / "static"),
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=common.ROOT, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def measure(base: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        login = browser.new_context().new_page()
        login.goto(f"{base}/accounts/login/?next=/rate/demo/")
        login.fill("input[name=login]", DEMO_EMAIL)
        login.fill("input[name=password]", DEMO_PASSWORD)
        login.keyboard.press("Enter")
        login.wait_for_url(f"{base}/rate/demo/*")
        # A fresh context with the session only: a cold cache, so every asset is fetched.
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies(login.context.cookies())
        login.context.close()
        page = context.new_page()
        page.goto(f"{base}/rate/demo/", wait_until="load")
        page.wait_for_timeout(300)  # the favicon is fetched after load
        sizes = page.evaluate(
            "() => [performance.getEntriesByType('navigation')[0],"
            " ...performance.getEntriesByType('resource')].map(e => ({name: e.name,"
            " wire: e.transferSize, raw: e.decodedBodySize, type: e.initiatorType}))"
        )
        html = page.content()
        scripts = page.evaluate("() => [...document.scripts].map(s => s.src)")
        times = []
        for _ in range(RATE_COMPARISONS):
            page.evaluate(_ARM)
            page.keyboard.press("1")
            page.keyboard.press("q")
            page.keyboard.press("Enter")
            # Polled from here (wait_for_function evaluates a string, which the CSP forbids);
            # the time itself is measured in the page.
            elapsed = None
            for _ in range(3000):
                elapsed = page.evaluate("() => window.__enterToNext")
                if elapsed is not None:
                    break
                time.sleep(0.01)
            times.append(elapsed)
        browser.close()
    raw = sum(s["raw"] for s in sizes)
    return {
        "page": {
            "resources": sizes,
            "html_bytes": len(html.encode()),
            "total_bytes_uncompressed": raw,
            "under_budget": raw < PAGE_BUDGET_BYTES,
            "scripts": scripts,
        },
        "enter_to_next_ms": {
            "n": len(times),
            "median": round(statistics.median(times), 1),
            "p95": round(sorted(times)[max(0, int(len(times) * 0.95) - 1)], 1),
            "max": round(max(times), 1),
        },
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rate-page-") as tmp_dir:
        tmp = Path(tmp_dir)
        env = _env(tmp)
        _manage(env, "migrate", "--noinput")
        _manage(env, "seed_demo", "--force")
        _manage(env, "collectstatic", "--noinput")
        with common.gunicorn(
            workers=2, env=env, ready_path="/accounts/login/", stop_seconds=20
        ) as server:
            results = measure(server.base)
    results.update(
        when=datetime.now(UTC).isoformat(timespec="seconds"),
        server="gunicorn, 2 sync workers, SQLite, DEBUG off",
        cpus=os.cpu_count(),
    )
    out = common.ROOT / "bench" / "results" / "rate_page.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    page, t = results["page"], results["enter_to_next_ms"]
    print(
        f"rating page: {page['total_bytes_uncompressed']:,} bytes uncompressed in "
        f"{len(page['resources'])} requests (budget {PAGE_BUDGET_BYTES:,}: "
        f"{'under' if page['under_budget'] else 'OVER'})"
    )
    print(
        f"1 Q Enter -> next comparison on screen, {t['n']} comparisons: median {t['median']} ms, "
        f"p95 {t['p95']} ms, max {t['max']} ms"
    )
    print(f"written to {out.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
