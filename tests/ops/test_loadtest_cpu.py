"""The load suite's CPU accounting: what each part of the cluster spent over a step's window."""

from __future__ import annotations

import os

from loadtest import common


def _group(name: str, pgrp: int) -> str | None:
    return {100: "web", 0: "kernel"}.get(pgrp) or ("postgresql" if name == "postgres" else None)


def test_cpu_by_group_counts_only_what_was_spent_inside_the_window():
    first = {
        101: ("gunicorn", 100, 5000),  # a web worker busy long before the window: 5,000 ticks
        102: ("gunicorn", 100, 700),  # recycled within it: counted up to its last sample
        7: ("kworker", 0, 40),
        300: ("postgres", 300, 900),
        400: ("bash", 400, 10),  # nobody's: not counted
    }
    middle = {**first, 101: ("gunicorn", 100, 5030), 102: ("gunicorn", 100, 720)}
    last = {
        101: ("gunicorn", 100, 5060),
        103: ("gunicorn", 100, 15),  # its replacement, started within the window: all of it
        7: ("kworker", 0, 42),
        300: ("postgres", 300, 950),
        400: ("bash", 400, 99),
    }
    spent = common.cpu_by_group([first, middle, last], _group)
    assert spent == {"web": 60 + 20 + 15, "kernel": 2, "postgresql": 50}


def test_a_reused_pid_counts_as_the_new_process():
    first = {500: ("postgres", 500, 800)}
    last = {500: ("gunicorn", 100, 30)}  # the backend ended; a worker got its pid
    assert common.cpu_by_group([first, last], _group) == {"web": 30}


def test_process_ticks_reads_this_process():
    name, pgrp, ticks = common.process_ticks()[os.getpid()]
    assert pgrp == os.getpgrp()
    assert ticks >= 0 and name


def test_busy_fractions_are_per_core_after_the_machine():
    before = [(100, 200), (60, 100), (40, 100)]
    after = [(250, 400), (150, 200), (100, 200)]
    assert common.busy_fractions(before, after) == [0.75, 0.9, 0.6]
