"""'Mes actes': each professional sees and updates only their own acts; the month's export; the admin view."""

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.billing.models import BillingRecord, Parameter

MONTH = timezone.localdate().strftime("%Y-%m")


@pytest.fixture
def answered(cast):
    """Three answered cases: the expert has three TE2 acts this month, the requester three RQD."""
    return [cast.case_in("answered") for _ in range(3)]


def _csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def _euros(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


def test_each_professional_sees_their_own_acts(cast, client_for, answered):
    expert_page = client_for(cast.expert).get(reverse("billing:acts"), {"month": MONTH})
    requester_page = client_for(cast.requester).get(reverse("billing:acts"), {"month": MONTH})
    outsider_page = client_for(cast.outsider).get(reverse("billing:acts"), {"month": MONTH})
    for case in answered:
        assert case.reference in expert_page.content.decode()
        assert case.reference in requester_page.content.decode()
        assert case.reference not in outsider_page.content.decode()
    assert expert_page.context["total"] == Decimal("3") * BillingRecord.objects.filter(
        act_code="TE2").first().amount
    assert {row["record"].act_code for row in expert_page.context["rows"]} == {"TE2"}
    assert {row["record"].act_code for row in requester_page.context["rows"]} == {"RQD"}
    assert outsider_page.context["rows"] == []
    assert AuditEvent.objects.filter(action="billing.list", actor_id=cast.outsider.user.pk).exists()


def test_the_outsider_can_neither_update_nor_export_anyone_elses_acts(cast, client_for, answered):
    record = BillingRecord.objects.filter(professional=cast.expert).first()
    outsider = client_for(cast.outsider)
    response = outsider.post(reverse("billing:status", args=[record.pk]), {"status": "billed", "month": MONTH})
    assert response.status_code == 404
    record.refresh_from_db()
    assert record.status == "to_bill"
    rows = _csv_rows(outsider.get(reverse("billing:export", args=["csv"]), {"month": MONTH}))
    assert len(rows) == 2 and rows[-1][2] == "0"  # header and an empty total
    claims = json.loads(outsider.get(reverse("billing:export", args=["json"]), {"month": MONTH}).content)
    assert claims["claims"] == []
    # Staff are no exception on the personal page; the admin view is theirs, and only theirs.
    assert client_for(cast.admin).get(reverse("billing:export", args=["csv"])).status_code == 404
    assert outsider.get(reverse("billing:overview")).status_code == 404
    assert outsider.get(reverse("billing:overview_export")).status_code == 404


def test_status_moves_are_checked_and_audited(cast, client_for, answered):
    record = BillingRecord.objects.filter(professional=cast.expert).first()
    client = client_for(cast.expert)
    url = reverse("billing:status", args=[record.pk])
    client.post(url, {"status": "paid", "month": MONTH})  # to bill -> paid skips the claim: refused
    record.refresh_from_db()
    assert record.status == "to_bill"
    client.post(url, {"status": "billed", "month": MONTH})
    client.post(url, {"status": "rejected", "reason": "  ", "month": MONTH})  # a rejection needs its reason
    record.refresh_from_db()
    assert record.status == "billed"
    response = client.post(url, {"status": "rejected", "reason": "NIR inconnu de la caisse", "month": MONTH},
                           follow=True)
    record.refresh_from_db()
    assert (record.status, record.rejection_reason) == ("rejected", "NIR inconnu de la caisse")
    assert "NIR inconnu de la caisse" in response.content.decode()
    client.post(url, {"status": "billed", "month": MONTH})
    client.post(url, {"status": "paid", "month": MONTH})
    record.refresh_from_db()
    assert (record.status, record.rejection_reason) == ("paid", "")
    summaries = list(AuditEvent.objects.filter(action="billing.status", object_id=str(record.pk))
                     .order_by("at").values_list("summary", flat=True))
    assert len(summaries) == 4 and "NIR inconnu" in summaries[1]


def test_the_month_export_opens_in_a_spreadsheet_and_its_totals_match(cast, client_for, answered):
    records = BillingRecord.objects.filter(professional=cast.expert)
    client = client_for(cast.expert)
    response = client.get(reverse("billing:export", args=["csv"]), {"month": MONTH})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, *lines, total = _csv_rows(response)
    assert len(header) == len(total) and all(len(line) == len(header) for line in lines)
    amount = header.index("Montant (EUR)")
    assert len(lines) == records.count() == 3
    assert sum(_euros(line[amount]) for line in lines) == _euros(total[amount]) == sum(r.amount for r in records)
    assert total[0] == "Total" and total[2] == "3"
    nirs = {line[header.index("NIR du patient")] for line in lines}
    assert nirs == {case.patient.ins_nir for case in answered}
    assert {line[header.index("RPPS")] for line in lines} == {cast.expert.rpps}
    assert AuditEvent.objects.filter(action="billing.export", actor_id=cast.expert.user.pk).exists()


def test_the_json_export_holds_what_a_sesam_sans_vitale_claim_needs(cast, client_for, answered):
    data = json.loads(client_for(cast.requester).get(reverse("billing:export", args=["json"]),
                                                     {"month": MONTH}).content)
    assert data["totals"] == {"count": 3, "amount": "30.00"}
    claim = data["claims"][0]
    case = next(c for c in answered if c.reference == claim["case_reference"])
    assert claim["act_code"] == "RQD" and claim["amount"] == "10.00"
    assert claim["patient"]["nir"] == case.patient.ins_nir
    assert claim["patient"]["birth_date"] == case.patient.birth_date.isoformat()
    assert claim["professional"]["rpps"] == cast.requester.rpps
    assert claim["act_date"] == timezone.localdate().isoformat()
    assert claim["third_party_payment"] is True and claim["coverage_percent"] == 100


def test_other_months_are_not_in_the_page_or_the_export(cast, client_for, answered):
    client = client_for(cast.expert)
    page = client.get(reverse("billing:acts"), {"month": "2019-01"})
    assert page.context["rows"] == []
    assert client.get(reverse("billing:acts"), {"month": "n'importe quoi"}).context["month"] == MONTH


def test_admin_overview_totals_per_professional_and_network(cast, client_for, answered):
    response = client_for(cast.admin).get(reverse("billing:overview"), {"month": MONTH})
    assert response.status_code == 200
    totals = response.context["totals"]
    assert totals == {"count": 6, "amount": sum(r.amount for r in BillingRecord.objects.all())}
    by_network = {(row["case__network__name"], row["act_code"]): row["count"]
                  for row in response.context["by_network"]}
    assert by_network == {("Dermatologie", "TE2"): 3, ("Dermatologie", "RQD"): 3}
    rows = _csv_rows(client_for(cast.admin).get(reverse("billing:overview_export"), {"month": MONTH}))
    assert rows[-1][2] == "6" and _euros(rows[-1][3]) == totals["amount"]


def test_remote_activity_share_against_the_cap(cast, client_for, answered):
    client = client_for(cast.expert)
    year = timezone.localdate().year
    url = reverse("billing:activity")
    response = client.post(url, {"year": year, "total_acts": 100, "teleconsultations": 150})
    assert response.status_code == 200 and response.context["form"].errors  # more than the total: refused
    client.post(url, {"year": year, "total_acts": 100, "teleconsultations": 18})
    ind = client.get(url, {"year": year}).context["ind"]
    # 2024 convention: tele-expertise does not count; the three TE2 acts are shown, not counted.
    assert (ind["te_acts"], ind["share"], ind["cap"], ind["over_cap"]) == (3, Decimal("18.0"), 20, False)
    Parameter.objects.filter(key="remote_cap_counts_teleexpertise").update(valid_to=date(year - 1, 12, 31))
    Parameter.objects.create(key="remote_cap_counts_teleexpertise", value=1, valid_from=date(year, 1, 1))
    ind = client.get(url, {"year": year}).context["ind"]
    assert (ind["share"], ind["over_cap"]) == (Decimal("21.0"), True)
    assert AuditEvent.objects.filter(action="billing.activity_declare").count() == 1


@pytest.mark.parametrize("asked", ["99999", "0", "²", "20x6", "-1"])
def test_an_impossible_year_shows_this_year(cast, client_for, asked):
    response = client_for(cast.expert).get(reverse("billing:activity"), {"year": asked})
    assert response.status_code == 200
    assert response.context["ind"]["year"] == timezone.localdate().year


def test_a_declaration_for_an_impossible_year_is_refused_not_filed_elsewhere(cast, client_for):
    response = client_for(cast.expert).post(reverse("billing:activity"),
                                            {"year": "99999", "total_acts": 100, "teleconsultations": 10})
    assert response.status_code == 200 and response.context["form"].non_field_errors()
    assert not AuditEvent.objects.filter(action="billing.activity_declare").exists()
