"""Keyset pagination by id: `{"results": [...], "next": url | null}`.

The cursor is the last id of the page (opaque to clients), so each page is one indexed range
query whatever its depth, and rows added meanwhile never shift a page (an incremental pull
that resumes from its last `next` misses nothing and repeats nothing).
"""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

CURSOR = "cursor"
PAGE_SIZE = "page_size"


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        number = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise NotFound("Invalid cursor.") from None
    if kind != "id" or number < 0:
        raise NotFound("Invalid cursor.")
    return number


class IdCursorPagination(BasePagination):
    """Paginates a queryset ordered by id; `page(queryset)` returns its rows and sets `next`."""

    def page_size(self, request) -> int:
        default = settings.RATERHUB_API_PAGE_SIZE
        try:
            size = int(request.query_params.get(PAGE_SIZE, default))
        except ValueError:
            size = default
        return max(1, min(size, settings.RATERHUB_API_MAX_PAGE_SIZE))

    def paginate_queryset(self, queryset, request, view=None, *, rows=None, id_of=None):
        """The page's rows: `rows(queryset, limit)` reads them (default: the model instances),
        `id_of(row)` gives a row's id (default: its pk)."""
        size = self.page_size(request)
        cursor = request.query_params.get(CURSOR)
        if cursor:
            queryset = queryset.filter(pk__gt=_decode(cursor))
        queryset = queryset.order_by("pk")
        found = rows(queryset, size + 1) if rows else list(queryset[: size + 1])
        self.request = request
        self.next_id = (
            (id_of or (lambda row: row.pk))(found[size - 1]) if len(found) > size else None
        )
        return found[:size]

    def get_next_link(self) -> str | None:
        if self.next_id is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, CURSOR, _encode(self.next_id))

    def get_paginated_response(self, data):
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "format": "uri", "nullable": True},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": CURSOR,
                "in": "query",
                "required": False,
                "description": "The `next` link's cursor (opaque).",
                "schema": {"type": "string"},
            },
            {
                "name": PAGE_SIZE,
                "in": "query",
                "required": False,
                "description": "Rows per page (at most RATERHUB_API_MAX_PAGE_SIZE).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
