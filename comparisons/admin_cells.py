"""Cells the admin's change lists share (comparisons' and accounts'): kept narrow, so a list
fits a 1280 px screen (tests/browser/test_admin_widths_browser.py)."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html


def short_when(value) -> str:
    """A list cell's time: "2026-12-01 23:47" in the site's time zone, on one line (the admin's
    "Dec. 1, 2026, 11:47 p.m." took a column of its own on a 1280 px screen)."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return format_html(
        '<time class="rh-when" datetime="{}">{}</time>',
        local.isoformat(),
        local.strftime("%Y-%m-%d %H:%M"),
    )


def when_column(field: str, description: str):
    """A list_display column showing `field` as short_when, sortable by it."""

    @admin.display(description=description, ordering=field)
    def column(self, obj) -> str:
        return short_when(getattr(obj, field))

    column.__name__ = f"{field}_short"
    return column
