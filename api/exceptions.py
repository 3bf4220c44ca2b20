"""Every API error is JSON with a `detail`, whatever raised it; never a debug page."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def api_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("API error", exc_info=exc)
        return Response({"detail": "Server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if not (isinstance(response.data, dict) and "detail" in response.data):
        # A serializer's field errors: {"detail": ..., "fields": {name: [messages]}}.
        fields = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        response.data = {"detail": _summary(fields), "fields": fields}
    return response


def _summary(fields: dict) -> str:
    parts = []
    for name, messages in fields.items():
        text = messages[0] if isinstance(messages, list) and messages else messages
        parts.append(f"{name}: {text}")
    return "Invalid input: " + "; ".join(str(p) for p in parts)
