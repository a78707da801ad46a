"""Query counts of the inboxes and the case page are pinned and do not grow with cases or messages."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from teleexpertise.cases import services
from teleexpertise.cases.models import Case


def _count(client, url, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _grow(cast, n):
    """n more cases of each kind the pages list, each with messages."""
    for _ in range(n):
        taken = cast.case_in("taken")
        cast.case_in("submitted")
        for who in (cast.requester, cast.expert):
            services.case_post_message(actor=cast.actor(who), case_id=taken.pk, body="Un message")


PAGES = [("expert", {"box": "todo"}), ("colleague", {"box": "pool"}), ("requester", {"box": "requests"}),
         ("requester", {"box": "search", "q": "DURAND"})]

# Pinned: session, user, professional, network roles, page count, page rows, audit insert, savepoints...
INBOX_QUERIES = 14  # 12 + the tags of the page's rows (one prefetch) + the live-update stamp (one aggregate)
POOL_QUERIES = INBOX_QUERIES + 1  # + the members' load, one grouped query
CASE_PAGE_QUERIES = 24  # 22 + the deliveries of all report versions (one prefetch) + the case's tags


@pytest.mark.parametrize(("who", "params"), PAGES)
def test_inbox_queries_do_not_grow(cast, client_for, who, params):
    client = client_for(getattr(cast, who).user)
    _grow(cast, 2)
    client.get(reverse("cases:inbox"), params)
    small = _count(client, reverse("cases:inbox"), params)
    _grow(cast, 6)
    assert _count(client, reverse("cases:inbox"), params) == small
    assert small <= (POOL_QUERIES if params["box"] == "pool" else INBOX_QUERIES), small


def test_case_page_queries_do_not_grow_with_messages_or_versions(cast, client_for):
    case = cast.case_in("answered")
    client = client_for(cast.expert.user)
    url = reverse("cases:detail", args=[case.pk])
    services.case_post_message(actor=cast.actor(cast.requester), case_id=case.pk, body="Premier message")
    client.get(url)  # the first visit creates the read marker; later ones update it
    small = _count(client, url)
    for i in range(10):
        services.case_post_message(actor=cast.actor(cast.requester), case_id=case.pk, body=f"Message {i}")
    assert _count(client, url) == small
    assert small <= CASE_PAGE_QUERIES, small


def test_closing_survey_and_follow_up_cost_no_query_on_the_case_page(cast, client_for):
    """Both are joined to the case row, not read by queries of their own."""
    closed = cast.case_in("closed")
    Case.objects.filter(pk=closed.pk).update(closed_at=timezone.now() - timedelta(days=43))
    assert services.follow_ups_request_due() == 1
    services.follow_up_answer(actor=cast.actor(cast.requester), case_id=closed.pk, advice_followed="yes",
                              seen=["none"], outcome="Guéri.")
    client = client_for(cast.expert.user)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(reverse("cases:detail", args=[closed.pk])).content.decode()
    assert "Guéri." in page and "Questionnaire de clôture" in page
    own_reads = [q["sql"] for q in ctx.captured_queries
                 if 'FROM "cases_closingsurvey"' in q["sql"] or 'FROM "cases_followup"' in q["sql"]]
    assert not own_reads, own_reads
