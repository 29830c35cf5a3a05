"""How the app's events run: every CPU-heavy job, page or API, shares one concurrency limit."""

from ..context import CONCURRENCY

# Page events: not callable through the API.
PAGE = {"api_visibility": "private", "concurrency_id": "cpu", "concurrency_limit": CONCURRENCY}
API = {"concurrency_id": "cpu", "concurrency_limit": CONCURRENCY}  # the documented endpoints share it too
