"""`core.paging.page_total`: the total is the page's end when the page shows it, else the count is asked."""

import pytest

from teleexpertise.core.paging import page_total


def _count(calls, total=42):
    def count():
        calls.append(1)
        return total
    return count


@pytest.mark.parametrize(("page", "offset", "limit", "total", "counted"), [
    ([1, 2, 3], 0, 25, 3, False),  # the whole list on a first page that is not full
    ([1, 2], 50, 25, 52, False),  # the last page, not full
    ([], 0, 25, 0, False),  # nothing at all
    ([1] * 25, 0, 25, 42, True),  # a full page: there may be more
    ([], 100, 25, 42, True),  # past the end: where the list ends is not known
])
def test_page_total(page, offset, limit, total, counted):
    calls = []
    assert page_total(page, offset, limit, _count(calls)) == total
    assert bool(calls) is counted
