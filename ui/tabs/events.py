"""How the app's events run: every CPU-heavy job, page or API, shares one concurrency limit."""

from ..context import CONCURRENCY

# Page events: not callable through the API.
PAGE = {"api_visibility": "private", "concurrency_id": "cpu", "concurrency_limit": CONCURRENCY}
API = {"concurrency_id": "cpu", "concurrency_limit": CONCURRENCY}  # the documented endpoints share it too
# Page events that run no model and read no file (clearing what a change made stale): they never wait
# for a model's place, so what is on screen follows the person's change at once.
LIGHT = {"api_visibility": "private", "concurrency_id": "light", "concurrency_limit": 4}
