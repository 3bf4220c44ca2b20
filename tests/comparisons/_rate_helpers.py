"""The query budgets of the rating-page tests (test_rate_*.py)."""

from __future__ import annotations

# Budget per request, in data queries (django_assert_max_data_queries; measured the same on
# SQLite and PostgreSQL; the session comes from the cache: cached_db):
#   a page 9 at most, the first visit that leases: user 1 + the project 1 + membership 1 + the
#   queue's new lease 4 (the pick window's candidates, the lock of the one taken by primary
#   key, its slot, the lease) + the rater's standing with "left for you" 1 + responses 1;
#   an action 13 at most, the htmx submit: user 1 + the rater's lease with its project 1 + the
#   queue's submit 5 (the lease and its comparison locked, the overlap policy with the counted
#   choices, three writes) + the queue's new lease 4 (no membership read: the lease's own
#   request checked it) + standing 1 + responses 1.
# The pick reads candidates and locks apart so that neither statement's plan depends on the
# planner's statistics (comparisons.sql).
PAGE_BUDGET = 9
ACTION_BUDGET = 13
