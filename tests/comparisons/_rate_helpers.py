"""The query budgets of the rating-page tests (test_rate_*.py)."""

from __future__ import annotations

# Budget per request, in data queries (django_assert_max_data_queries; measured the same on
# SQLite and PostgreSQL): every rating view stays within 12; the largest,
#   htmx submit 12 = user 1 + the rater's assignment 1 + the queue's submit 4 + the queue's
#   next lease 4 + progress 1 + responses 1 (the session comes from the cache: cached_db).
PAGE_BUDGET = 12
ACTION_BUDGET = 12
