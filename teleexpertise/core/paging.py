"""Lists answered a page at a time, with the number of matches."""

from collections.abc import Callable, Sized


def page_total(page: Sized, offset: int, limit: int, count: Callable[[], int]) -> int:
    """How many rows match, for a page read at `offset` with at most `limit` rows: a page that is not full and
    not empty (or empty at the start) ends the list, so the total is known without `count()`, a second query."""
    if len(page) < limit and (page or offset == 0):
        return offset + len(page)
    return count()
