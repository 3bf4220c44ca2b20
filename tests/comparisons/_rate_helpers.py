"""The query budgets of the rating-page tests (test_rate_*.py)."""

from __future__ import annotations

# Budget per request, in data queries (django_assert_max_data_queries; measured the same on
# SQLite and PostgreSQL): every page stays within 15, every action within 16; the largest,
#   htmx submit 16 = user 1 + the rater's assignment 1 + the queue's submit 5 (the lease and
#   its comparison locked, the overlap policy with the counted choices, three writes) + the queue's
#   next lease 5 (membership, the pick window's candidates, the lock of the one taken by
#   primary key, its slot, the lease) + progress 1 + "left for you" 1 + the Undo candidate 1
#   + responses 1 (the session comes from the cache: cached_db). The pick reads candidates and locks apart so that neither statement's
#   plan depends on the planner's statistics (comparisons.sql).
PAGE_BUDGET = 15
ACTION_BUDGET = 16
