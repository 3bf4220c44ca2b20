"""Rating page benchmark through HTTP, as raters use it.

gunicorn (the production server, BENCH_HTTP_WORKERS sync workers, default 3) on PostgreSQL,
with DEBUG off and WhiteNoise serving collected static files. For each size N (10k, 100k, 1M
comparisons; BENCH_HTTP_SIZES) the database is seeded with the queue benchmark's COPY seeder
(30% complete, 10% started, 60% untouched) plus two ~1 kB Markdown responses per comparison,
then 4 and 16 concurrent raters, each with their own logged-in session, loop for
BENCH_HTTP_SECONDS: load the page once, then submit by htmx again and again (every submit's
response is the next comparison's panel), reloading the full page every RELOAD_EVERY submits.
Reported: judgments per second, p50/p95 of the page load and of the submit round trip, errors.
First, on the brand-new database, the minute after a real import: the queue benchmark's
fresh project (FRESH_COMPARISONS imported through `import_comparisons`, no manual ANALYZE), one
rater looping through HTTP for FRESH_SECONDS (BENCH_HTTP_FRESH_SECONDS, default 60), then again
with the statistics deleted. Once, at the smallest size: page weight (HTML, CSS, JS; bytes on the wire with gzip, and
uncompressed) and time to first contentful paint in headless Chromium.

Runs in a child process against its own database (BENCH_HTTP_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/raterhub_bench_http; created and dropped here) and, as in
production, with Redis for the cache (BENCH_HTTP_REDIS_URL, default database 14 on the local
Redis, flushed for each size; without a reachable Redis, the file cache, and the results say so).
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench import common

SIZES = common.env_sizes("BENCH_HTTP_SIZES", "10000,100000,1000000")
SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "15"))
WORKERS = int(os.environ.get("BENCH_HTTP_WORKERS", "3"))
CONCURRENCY = (4, 16)
RELOAD_EVERY = 10
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

RESPONSE_TEXT = (
    "## Answer\n\nTCP slow start grows the congestion window exponentially until the first loss "
    "or the slow-start threshold, then hands over to congestion avoidance.\n\n"
    "```python\ndef cwnd_after(rtts, mss=1460):\n    return mss * 2 ** rtts\n```\n\n"
    "| phase | growth |\n|---|---|\n| slow start | exponential |\n| avoidance | linear |\n\n"
    + "More detail on pacing, ACK clocking and loss recovery. "
    * 10
)


def _redis_url() -> str:
    """The benchmark's Redis if it answers, else "" (the file cache)."""
    import redis

    url = os.environ.get("BENCH_HTTP_REDIS_URL", "redis://127.0.0.1:6379/14")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return ""
    return url


def plain_http_env(url: str, var: Path, *, hosts: str, **extra: str) -> dict[str, str]:
    """A child's production settings on database `url`, served over plain HTTP on this machine
    (no TLS redirect, no secure cookies, no HSTS), with its own var and static folders under
    `var` and Redis for the cache when it answers."""
    return common.child_env(
        url,
        REDIS_URL=_redis_url(),
        ALLOWED_HOSTS=hosts,
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        RATERHUB_VAR_DIR=str(var),
        STATIC_ROOT=str(var / "static"),
        **extra,
    )


def main() -> None:
    url = common.database_url("http")
    common.recreate_database(url)
    var = tempfile.mkdtemp(prefix="raterhub-bench-http-")
    env = plain_http_env(url, Path(var), hosts="127.0.0.1,localhost")
    try:
        common.run_child("bench.bench_http", env)
    finally:
        common.drop_database(url)


# --- child: Django is set up here ---------------------------------------------------------


def _child() -> None:
    from django.core.cache import caches
    from django.core.management import call_command

    common.setup_django()
    call_command("collectstatic", interactive=False, verbosity=0)
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(),
        "workers": WORKERS,
        "seconds_per_run": SECONDS,
        "reload_every": RELOAD_EVERY,
        "cache": "redis" if os.environ.get("REDIS_URL") else "file (no Redis reachable)",
        "cpus": os.cpu_count(),
        "sizes": {},
    }
    results["fresh_import"] = _fresh_import()
    for n in SIZES:
        project, seed_seconds = _seed(n)
        # A new dataset (ids restart): nothing rendered for the last one may be served.
        caches["rendered"].clear()
        print(f"seeded {n:,} comparisons in {seed_seconds:.1f}s", flush=True)
        entry: dict = {"seed_seconds": round(seed_seconds, 1)}
        with _server() as base:
            if n == min(SIZES):
                entry["page"] = _page_metrics(base, project.slug)
            offset = 0
            for k in CONCURRENCY:
                cookies = _sessions(offset, k)
                offset += k
                entry[str(k)] = _run(base, project.slug, cookies)
                _print_row(n, k, entry[str(k)])
        results["sizes"][str(n)] = entry
    _goals(results)
    _print_table(results)
    common.write_results("http", results)


FRESH_SECONDS = float(os.environ.get("BENCH_HTTP_FRESH_SECONDS", "60"))


def _fresh_import() -> dict:
    from django.test import Client

    from bench.bench_queue import import_fresh_project, wipe_statistics

    project, rater, import_seconds = import_fresh_project()
    client = Client()
    client.force_login(rater)
    session = client.cookies["sessionid"].value
    out: dict = {"comparisons": project.comparisons.count(), "import_seconds": import_seconds}
    with _server() as base:
        out["after_import"] = _run(base, project.slug, [session], seconds=FRESH_SECONDS)
        wipe_statistics()
        out["statistics_wiped"] = _run(base, project.slug, [session], seconds=FRESH_SECONDS / 3)
    for key in ("after_import", "statistics_wiped"):
        r = out[key]
        print(
            f"fresh import, {key}: one rater {r['judgments_per_second']} judgments/s, "
            f"submit p50 {r['submit_ms']['p50']} p95 {r['submit_ms']['p95']} ms",
            flush=True,
        )
    return out


def _seed(n: int):
    from django.db import connection

    from bench.bench_queue import _seed as seed_queue

    t0 = time.perf_counter()
    project = seed_queue(n)
    with connection.cursor() as cur:
        # Two responses per comparison, generated inside PostgreSQL (no round trips).
        cur.execute(
            "INSERT INTO comparisons_response (comparison_id, position, model_name, content) "
            "SELECT c.id, p.pos, 'model-' || p.pos, %s || ' (' || c.id || '/' || p.pos || ')' "
            "FROM comparisons_comparison c CROSS JOIN (VALUES (0), (1)) AS p(pos) "
            "WHERE c.project_id = %s",
            [RESPONSE_TEXT, project.pk],
        )
        cur.execute(
            "UPDATE comparisons_project SET instructions = %s WHERE id = %s",
            ["Pick the response that answers better. **Be careful** with code.", project.pk],
        )
        cur.execute("ANALYZE")
    return project, time.perf_counter() - t0


def _sessions(offset: int, count: int) -> list[str]:
    """Logged-in sessions for raters bench<offset>…, as session cookies (one per rater)."""
    from django.test import Client

    from accounts.models import User

    cookies = []
    for i in range(offset, offset + count):
        user = User.objects.get(email=f"bench{i}@bench.example")
        client = Client()
        client.force_login(user)
        cookies.append(client.cookies["sessionid"].value)
    return cookies


@contextmanager
def _server():
    with common.gunicorn(
        workers=WORKERS, args=("--backlog", "256"), ready_path="/accounts/login/", stop_seconds=20
    ) as server:
        yield server.base


# --- the raters ---------------------------------------------------------------------------

_SUBMIT = re.compile(rb'hx-post="(/rate/[^"]+/submit)"')
_TOKEN = re.compile(rb'"X-CSRFToken": "([^"]+)"')
_CSRF_COOKIE = re.compile(r"csrftoken=([^;]+)")


class _Rater(threading.Thread):
    def __init__(self, base: str, slug: str, session: str, stop_at: float, start: threading.Event):
        super().__init__(daemon=True)
        self.base, self.slug, self.session = base, slug, session
        self.stop_at, self.start_event = stop_at, start
        self.loads: list[float] = []
        self.submits: list[float] = []
        self.errors = 0
        self.done = False
        self.csrf_cookie = ""
        self.token = b""

    def _request(self, path: str, data: bytes | None = None, headers: dict | None = None):
        cookie = f"sessionid={self.session}"
        if self.csrf_cookie:
            cookie += f"; csrftoken={self.csrf_cookie}"
        req = urllib.request.Request(
            self.base + path, data=data, headers={"Cookie": cookie, **(headers or {})}
        )
        t0 = time.perf_counter()
        try:
            resp = urllib.request.urlopen(req, timeout=30)
            body, status, set_cookie = resp.read(), resp.status, resp.headers.get_all("Set-Cookie")
        except urllib.error.HTTPError as exc:
            body, status, set_cookie = exc.read(), exc.code, None
        elapsed = (time.perf_counter() - t0) * 1000
        for header in set_cookie or ():
            m = _CSRF_COOKIE.search(header)
            if m:
                self.csrf_cookie = m.group(1)
        return status, body, elapsed

    def load(self) -> bytes | None:
        status, body, ms = self._request(f"/rate/{self.slug}/")
        if status != 200:
            self.errors += 1
            return None
        self.loads.append(ms)
        m = _TOKEN.search(body)
        if m:
            self.token = m.group(1)
        return body

    def run(self) -> None:
        body = self.load()
        self.start_event.wait()
        count = 0
        while body is not None and time.perf_counter() < self.stop_at:
            m = _SUBMIT.search(body)
            if m is None:
                self.done = b"All done" in body
                break
            status, body, ms = self._request(
                m.group(1).decode(),
                data=b"choice=1&duration_ms=9000",
                headers={
                    "HX-Request": "true",
                    "X-CSRFToken": self.token.decode(),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            if status != 200:
                self.errors += 1
                body = self.load()
                continue
            self.submits.append(ms)
            count += 1
            if count % RELOAD_EVERY == 0:
                body = self.load()


def _pcts(samples: list[float]) -> dict:
    return common.percentiles(samples, (50, 95), 1, count=True)


def _run(base: str, slug: str, sessions: list[str], *, seconds: float = SECONDS) -> dict:
    start = threading.Event()
    raters = [_Rater(base, slug, s, 0.0, start) for s in sessions]
    for r in raters:
        r.start()
    time.sleep(1.0)  # every rater has its first page before the clock starts
    t0 = time.perf_counter()
    for r in raters:
        r.stop_at = t0 + seconds
    cpu0 = time.process_time()
    start.set()
    for r in raters:
        r.join()
    elapsed = time.perf_counter() - t0
    client_cpu = time.process_time() - cpu0
    submits = [ms for r in raters for ms in r.submits]
    # Page loads measured while the clock ran (the first load of each rater came before it).
    loads = [ms for r in raters for ms in r.loads[1:]]
    return {
        # Other work on the machine skews every figure here; record how busy it was.
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "judgments": len(submits),
        "judgments_per_second": round(len(submits) / elapsed, 1),
        "submit_ms": _pcts(submits),
        "load_ms": _pcts(loads),
        "errors": sum(r.errors for r in raters),
        # The simulated raters share the machine's CPUs with the server; what they used. Their
        # work per request is fixed, so this also shows how fast the machine was during the run.
        "client_cpu_ms_per_request": round(
            client_cpu * 1000 / max(1, len(submits) + len(loads)), 2
        ),
    }


# --- page weight and first render ---------------------------------------------------------


def _page_metrics(base: str, slug: str) -> dict:
    """Bytes of the page and its assets, and first contentful paint, in headless Chromium."""
    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(email="bench63@bench.example"))
    session = client.cookies["sessionid"].value
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"error": "playwright not installed"}
    if not Path(CHROMIUM).exists():
        return {"error": f"no Chromium at {CHROMIUM}"}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
        page = context.new_page()
        page.goto(f"{base}/rate/{slug}/", wait_until="load")
        # The cold load: what each request carried (HTML, CSS, JS).
        sizes = page.evaluate(
            "() => [performance.getEntriesByType('navigation')[0],"
            " ...performance.getEntriesByType('resource')].map(e => ({name: e.name,"
            " wire: e.encodedBodySize, raw: e.decodedBodySize, type: e.initiatorType}))"
        )
        fcps, dcls = [], []
        for _ in range(5):
            page.goto(f"{base}/rate/{slug}/", wait_until="load")
            timing = page.evaluate(
                """() => new Promise(resolve => {
                  const nav = performance.getEntriesByType('navigation')[0];
                  const done = fcp => resolve({fcp, dcl: nav.domContentLoadedEventEnd});
                  new PerformanceObserver(list => {
                    const e = list.getEntriesByName('first-contentful-paint')[0];
                    if (e) done(e.startTime);
                  }).observe({type: 'paint', buffered: true});
                  setTimeout(() => done(null), 3000);
                })"""
            )
            fcps.append(timing["fcp"])
            dcls.append(timing["dcl"])
        browser.close()
    return {
        "first_contentful_paint_ms_median": (
            round(statistics.median(f for f in fcps if f is not None), 1)
            if any(f is not None for f in fcps)
            else None
        ),
        "dom_content_loaded_ms_median": round(statistics.median(dcls), 1),
        "resources": sizes,
        "total_bytes_gzip": sum(s["wire"] for s in sizes),
        "total_bytes_uncompressed": sum(s["raw"] for s in sizes),
    }


# --- report -------------------------------------------------------------------------------


def _goals(results: dict) -> None:
    sizes = results["sizes"]
    goals = {}
    if "100000" in sizes:
        goals[">= 150 judgments/s at 100k with 16 raters"] = (
            sizes["100000"]["16"]["judgments_per_second"] >= 150
        )
    for k in CONCURRENCY:
        goals[f"submit p95 < 50 ms (every size, {k} raters)"] = all(
            e[str(k)]["submit_ms"]["p95"] is not None and e[str(k)]["submit_ms"]["p95"] < 50
            for e in sizes.values()
        )
    if "1000000" in sizes and "100000" in sizes:
        a, b = sizes["100000"]["16"], sizes["1000000"]["16"]
        goals["1M within 1.5x of 100k (submit p95, judgments/s)"] = (
            b["submit_ms"]["p95"] <= 1.5 * a["submit_ms"]["p95"]
            and b["judgments_per_second"] * 1.5 >= a["judgments_per_second"]
        )
    results["goals"] = goals


def _print_row(n: int, k: int, e: dict) -> None:
    print(
        f"  N={n:>9,} raters={k:>2}  {e['judgments_per_second']:>6} judgments/s  "
        f"submit p50/p95 {e['submit_ms']['p50']}/{e['submit_ms']['p95']} ms  "
        f"load p50/p95 {e['load_ms']['p50']}/{e['load_ms']['p95']} ms  errors {e['errors']}  "
        f"client CPU {e['client_cpu_ms_per_request']} ms/request  "
        f"(machine load average {e['load_average_1m_after']})",
        flush=True,
    )


def _print_table(results: dict) -> None:
    header = (
        f"{'N':>10} | {'raters':>6} | {'judgments/s':>11} | {'submit p50/p95 ms':>17} | "
        f"{'load p50/p95 ms':>15} | {'errors':>6}"
    )
    print(f"\ngunicorn {results['workers']} sync workers, {results['cpus']} CPUs, cache: {results['cache']}, "
          f"{results['seconds_per_run']:.0f} s per run, full reload every {RELOAD_EVERY} submits")  # fmt: skip

    def row(n: str, k: int, r: dict) -> str:
        return (
            f"{int(n):>10,} | {k:>6} | {r['judgments_per_second']:>11} | "
            f"{r['submit_ms']['p50']!s:>7}/{r['submit_ms']['p95']!s:<9} | "
            f"{r['load_ms']['p50']!s:>6}/{r['load_ms']['p95']!s:<8} | {r['errors']:>6}"
        )

    rows = (row(n, k, e[str(k)]) for n, e in results["sizes"].items() for k in CONCURRENCY)
    common.print_table(header, rows)
    for e in results["sizes"].values():
        page = e.get("page")
        if page and "error" not in page:
            print(
                f"\npage weight: {page['total_bytes_gzip']:,} bytes on the wire "
                f"({page['total_bytes_uncompressed']:,} uncompressed) in "
                f"{len(page['resources'])} requests; first contentful paint "
                f"{page['first_contentful_paint_ms_median']} ms (median of 5)"
            )
            for r in page["resources"]:
                print(f"    {r['wire']:>8,} / {r['raw']:>8,}  {r['name']}")
        elif page:
            print(f"\npage metrics: {page['error']}")
    for goal, ok in results.get("goals", {}).items():
        print(f"  {'PASS' if ok else 'FAIL'}  {goal}")
    # The raters loop with no think time, so 16 of them keep 16 requests in flight: by Little's
    # law each waits 16 / throughput per judgment on average, whatever the server does.
    for n, e in results["sizes"].items():
        r = e["16"]
        print(f"  N={int(n):,}, 16 raters: by Little's law each waits 16 / "
              f"{r['judgments_per_second']}/s = {16000 / r['judgments_per_second']:.0f} ms per "
              f"judgment (submit mean {r['submit_ms']['mean']} ms, plus every tenth page load)")  # fmt: skip


if __name__ == "__main__":
    main()
