"""Celery tasks: thin wrappers that load by id and call the plain functions in this app."""

from __future__ import annotations

from celery import shared_task  # noqa: F401
