"""Locust raters: each with its own logged-in session, thinking 5 to 15 s per comparison as a
person does (LOADTEST_THINK_MIN/MAX to change), through nginx like a browser.

A rater loads the rating page, then submits by htmx again and again (each submit's answer is
the next comparison's panel), and reloads the whole page every RELOAD_EVERY submits. Like
static/js/retry.js, a submit that fails on the network or with 502/503/504 is sent again with
backoff (0.5, 1, 2, 4, 8 s): "submit" counts what the rater finally got, "submit-attempt-failed"
each failed try. LOADTEST_EVENTS=<file> also writes one line per final outcome (time, name, ok,
assignment id) for the fault suite's checks.

The stats count the steady load only: LOADTEST_SETTLE seconds after the last rater has started,
they are written to LOADTEST_ARRIVAL (the arrival: first page loads, TLS handshakes, raters
still starting) and reset.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import secrets
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, between, events, task

SESSIONS = json.loads(
    Path(os.environ.get("LOADTEST_SESSIONS", "var/loadtest/sessions.json")).read_text()
)
PROJECT = SESSIONS["project"]
THINK = (
    float(os.environ.get("LOADTEST_THINK_MIN", "5")),
    float(os.environ.get("LOADTEST_THINK_MAX", "15")),
)
RELOAD_EVERY = 10
RETRY_DELAYS = (0.5, 1, 2, 4, 8)
RETRYABLE = {0, 502, 503, 504}  # 0: no HTTP answer (connection refused or reset)
SUBMIT = re.compile(r'action="(/rate/[^"]+/(\d+)/submit)"')
_next_session = itertools.count()
# Open for the whole run (Locust's process ends with it), line-buffered so nothing is lost.
_events_file = (
    open(os.environ["LOADTEST_EVENTS"], "a", buffering=1)  # noqa: SIM115
    if os.environ.get("LOADTEST_EVENTS")
    else None
)


@events.init.add_listener
def _count_from_steady_load(environment, **_kwargs) -> None:
    settle = float(os.environ.get("LOADTEST_SETTLE", "0"))
    arrival = os.environ.get("LOADTEST_ARRIVAL")

    def reset() -> None:
        if arrival:
            Path(arrival).write_text(json.dumps(_summary(environment.stats), indent=2) + "\n")
        environment.stats.reset_all()

    @environment.events.spawning_complete.add_listener
    def _spawned(user_count: int, **_kw) -> None:
        gevent.spawn_later(settle, reset)


def _summary(stats) -> dict[str, dict]:
    """Per request name: count, failures, p50/p95/p99 in ms (the names read_stats reads)."""
    return {
        entry.name: {
            "count": entry.num_requests,
            "failures": entry.num_failures,
            **{f"p{q}_ms": entry.get_response_time_percentile(q / 100) for q in (50, 95, 99)},
        }
        for entry in stats.entries.values()
    }


def _event(name: str, ok: bool, status: int, assignment: str = "") -> None:
    if _events_file is not None:
        _events_file.write(f"{time.time():.3f},{name},{int(ok)},{status},{assignment}\n")


class Rater(FastHttpUser):
    wait_time = between(*THINK)
    insecure = True  # make cluster's certificate is self-signed
    connection_timeout = 10.0
    network_timeout = 40.0

    def on_start(self) -> None:
        index = next(_next_session) % len(SESSIONS["sessions"])
        csrf = secrets.token_hex(16)  # a 32-character secret: Django accepts it as the cookie
        self.headers = {
            "Cookie": f"sessionid={SESSIONS['sessions'][index]}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Referer": self.host + "/",
        }
        self.submits = 0
        self.submit_url = None
        self.load_page()

    def _send(self, method: str, url: str, name: str, *, htmx: bool = False, **kwargs):
        """One request as the page sends it, retried like retry.js; returns (status, body)."""
        headers = {**self.headers, "HX-Request": "true"} if htmx else self.headers
        for delay in (*RETRY_DELAYS, None):
            with self.client.request(method, url, name=name, headers=headers,
                                     catch_response=True, **kwargs) as r:  # fmt: skip
                status = r.status_code or 0
                if status in RETRYABLE and delay is not None:
                    # Counted apart: the rater does not see it, the page tries again.
                    r.request_meta["name"] = f"{name}-attempt-failed"
                    r.failure(f"{status}: retrying")
                    _event(f"{name}-attempt-failed", False, status)
                    gevent.sleep(delay)
                    continue
                if status != 200:
                    r.failure(f"HTTP {status}")
                return status, r.text or ""
        return 0, ""

    def load_page(self) -> None:
        status, body = self._send("GET", f"/rate/{PROJECT}/", "page")
        _event("page", status == 200, status)
        match = SUBMIT.search(body)
        self.submit_url = match.group(1) if match else None

    @task
    def submit(self) -> None:
        if self.submit_url is None:
            self.load_page()
            return
        assignment = self.submit_url.split("/")[-2]
        answer = {"choice": random.choice(["1", "2", "tie"]),
                  "duration_ms": str(random.randint(4000, 15000))}  # fmt: skip
        status, body = self._send("POST", self.submit_url, "submit", data=answer, htmx=True)
        _event("submit", status == 200, status, assignment)
        self.submits += 1
        match = SUBMIT.search(body)
        self.submit_url = match.group(1) if match else None
        if self.submits % RELOAD_EVERY == 0 or self.submit_url is None:
            self.load_page()
