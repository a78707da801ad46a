"""Load the French, fictitious demo data of teleexpertise.core.demo, once; then print how to log in.

Every case is played step by step through the services, as its users would, so that its audit trail, thread,
read markers and notifications are the real ones. The services stamp what they write with the current time;
after each step, the rows it wrote are moved back to the step's planned time (spread over the last two months,
in office hours). Everything happens in one transaction: a failure leaves nothing half-made. A database that
already holds the demo administrator is left untouched.
"""

import itertools
import operator
import random
from contextlib import contextmanager
from datetime import date, timedelta
from functools import reduce

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Case as SqlCase
from django.db.models import F, Q, Value, When
from django.utils import timezone
from django.utils.formats import date_format
from stdnum import luhn

from teleexpertise.accounts.models import User
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.cases import services
from teleexpertise.cases.models import Case, ClosingSurvey, FollowUp, RequestForm
from teleexpertise.core import demo, demo_files
from teleexpertise.directory.models import Network, NetworkMembership, Organisation, Professional
from teleexpertise.documents import services as document_services
from teleexpertise.documents.models import Document
from teleexpertise.env import env_str
from teleexpertise.messaging import services as messaging
from teleexpertise.messaging.models import Message, Notification, ReadMarker
from teleexpertise.messaging.services import notification_emails_muted
from teleexpertise.patients.models import Consent, Patient
from teleexpertise.reports.models import ReportVersion
from teleexpertise.reports.services import CONTENT_FIELDS, report_save_draft, report_sign
from teleexpertise.webhooks.events import case_events_muted

# The timestamps the services set from the clock; a step's rows are moved to its planned time.
_STAMPED = (
    (Case, ("created_at", "updated_at", "submitted_at", "taken_at", "accepted_at", "answered_at", "closed_at")),
    (AuditEvent, ("at",)),
    (Message, ("created_at",)),
    (Notification, ("created_at", "read_at")),
    (ReadMarker, ("read_at",)),
    (ReportVersion, ("created_at", "updated_at", "signed_at")),
    (Consent, ("recorded_at",)),
    (Patient, ("created_at",)),
    (ClosingSurvey, ("answered_at",)),
    (FollowUp, ("requested_at", "answered_at")),
)

# Hours between a step and the previous one: (shortest, longest).
_GAP_HOURS = {
    "claim": (0.5, 8), "assign": (0.3, 4), "accept": (0.3, 6), "ask": (1, 20), "reply": (3, 30),
    "report": (2, 20), "draft_report": (1, 6), "amend": (24, 72), "close": (4, 72), "decline": (0.5, 24),
    "transfer": (1, 24), "withdraw": (2, 48), "msg": (0.5, 12), "doc": (0.02, 0.1),
}


_MSSANTE_DOMAINS = {org.key: org.mssante for org in demo.ORGANISATIONS}


def _paris(value) -> str:
    return date_format(timezone.localtime(value), "d/m/Y H:i")


class DemoSeeder:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.now = timezone.now()
        self.orgs, self.pros, self.networks, self.nirs = {}, {}, {}, {}
        self.patients = {pat.key: pat for pat in demo.PATIENTS}
        self.surveys = itertools.cycle(demo.CLOSING_SURVEYS)
        self.follow_up_answers = {}  # case pk -> the spec's answer to its follow-up

    def run(self) -> None:
        self._organisations()
        self._accounts()
        self._networks()
        self.nirs = {pat.key: self._nir(pat) for pat in demo.PATIENTS}
        for spec in demo.CASES:
            self._play(spec)
        self._follow_ups()
        self._attach_request_forms()
        self._settle_notifications()

    # --- Identifiers ------------------------------------------------------------------------------------

    def _digits(self, count: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(count))

    def _luhn(self, prefix: str, length: int) -> str:
        body = prefix + self._digits(length - len(prefix) - 1)
        return body + luhn.calc_check_digit(body)

    def _nir(self, pat: demo.Pat) -> str:
        born = date.fromisoformat(pat.birth_date)
        first13 = f"{pat.sex}{born:%y%m}{pat.place}{self.rng.randrange(1, 1000):03d}"
        numeric = first13.replace("2A", "19", 1).replace("2B", "18", 1)  # Corsica, as the INS key requires
        return f"{first13}{97 - int(numeric) % 97:02d}"

    # --- Directory --------------------------------------------------------------------------------------

    def _organisations(self) -> None:
        for org in demo.ORGANISATIONS:
            finess = org.finess_body + luhn.calc_check_digit(org.finess_body) if org.finess_body else None
            row = Organisation(name=org.name, finess=finess, city=org.city, postcode=org.postcode)
            row.full_clean()
            row.save()
            self.orgs[org.key] = row

    def _user(self, email: str, first: str, last: str, password: str, staff: bool = False) -> User:
        return User.objects.create(email=email, password=password, first_name=first, last_name=last, is_demo=True,
                                   is_staff=staff, is_superuser=staff, date_joined=self.now - timedelta(days=90))

    def _accounts(self) -> None:
        password = make_password(demo.PASSWORD)  # hashed once: every demo account shares it
        self._user(demo.ADMIN_EMAIL, "Alice", "Administratrice", password, staff=True)
        for pro in demo.PROFESSIONALS:
            user = self._user(demo.account_email(pro), pro.first, pro.last, password)
            self.pros[pro.key] = self._professional(pro, user)

    def _professional(self, pro: demo.Pro, user: User) -> Professional:
        org = self.orgs[pro.org]
        ids = {"adeli": self._luhn(org.postcode[:2] + "60", 9)} if pro.adeli else {"rpps": self._luhn("10", 11)}
        domain = _MSSANTE_DOMAINS[pro.org]
        row = Professional(
            user=user, first_name=pro.first, last_name=pro.last, profession_id=pro.profession,
            specialty_id=pro.specialty or None, advanced_practice=pro.advanced_practice, organisation=org,
            title="Dr" if pro.profession == "10" else "", city=org.city,
            mssante_email=f"{demo.slug(pro.first)}.{demo.slug(pro.last)}@{domain}",
            phone=f"01 99 00 {self._digits(2)} {self._digits(2)}", **ids)
        row.full_clean()
        row.save()
        return row

    def _networks(self) -> None:
        for net in demo.NETWORKS:
            network = Network.objects.create(name=net.name, specialty_id=net.specialty, organisation=self.orgs[net.org],
                                             description=net.description)
            for key in net.members:
                NetworkMembership.objects.create(network=network, professional=self.pros[key])
            NetworkMembership.objects.create(network=network, professional=self.pros[net.dispatcher],
                                             role=NetworkMembership.Role.DISPATCHER)
            self.networks[net.key] = network

    # --- Time -------------------------------------------------------------------------------------------

    def _office_hours(self, moment):
        """The same moment, or the next working morning when it falls at night or on a weekend."""
        local = timezone.localtime(moment)
        if local.hour < 8:
            local = local.replace(hour=8, minute=self.rng.randrange(60))
        elif local.hour >= 19:
            local = (local + timedelta(days=1)).replace(hour=8, minute=self.rng.randrange(60))
        if local.weekday() >= 5:
            local += timedelta(days=7 - local.weekday())
        return local

    def _timeline(self, spec: demo.CaseSpec) -> list:
        """The planned time of the creation and of each step, in office hours when possible, all in the past."""
        moment = timezone.localtime(self.now - timedelta(days=spec.days_ago))
        if spec.days_ago >= 1:  # an older case: any time of that day, the Friday before when it is a weekend
            moment = moment.replace(hour=self.rng.randrange(8, 19), minute=self.rng.randrange(60))
            moment -= timedelta(days=max(moment.weekday() - 4, 0))
        times = [self._office_hours(moment)]
        for step in spec.steps:
            low, high = _GAP_HOURS[step[0]]
            times.append(self._office_hours(times[-1] + timedelta(hours=self.rng.uniform(low, high))))
        return self._before_now(times)

    def _before_now(self, times: list) -> list:
        """The times squeezed, in the same proportions, to end ten minutes ago when they would end later."""
        latest = self.now - timedelta(minutes=10)
        if times[-1] <= latest:
            return times
        start = min(times[0], latest - timedelta(minutes=5 * len(times)))
        span = (times[-1] - times[0]) or timedelta(minutes=1)
        return [start + (t - times[0]) * ((latest - start) / span) for t in times]

    @contextmanager
    def _at(self, planned):
        """Move every timestamp written inside the block to `planned`."""
        start = timezone.now()
        yield
        end = timezone.now()
        for model, fields in _STAMPED:  # one UPDATE a table: each field moves only if written in the block
            written = {name: Q(**{f"{name}__range": (start, end)}) for name in fields}
            model.objects.filter(reduce(operator.or_, written.values())).update(**{
                name: SqlCase(When(condition, then=Value(planned)), default=F(name))
                for name, condition in written.items()})

    def _settle_notifications(self) -> None:
        """Notifications older than three days were seen (two hours later); the recent ones stay unread."""
        Notification.objects.filter(read_at=None, created_at__lt=self.now - timedelta(days=3)).update(
            read_at=F("created_at") + timedelta(hours=2))

    def _slot(self, moment):
        """An appointment slot on the day of `moment` (next Monday if it is a weekend)."""
        local = timezone.localtime(moment).replace(hour=self.rng.choice((9, 10, 11, 14, 15, 16)),
                                                   minute=self.rng.choice((0, 15, 30, 45)), second=0, microsecond=0)
        return local + timedelta(days=7 - local.weekday()) if local.weekday() >= 5 else local

    def _attach_request_forms(self) -> None:
        """The shipped forms of the demo networks, attached once the history is played: the demo's past requests
        predate them (they would not pass today's completeness check), new requests in the demo get them."""
        for net in demo.NETWORKS:
            if net.form:
                form = RequestForm.objects.get(questionnaire__id=net.form)
                form.networks.add(self.networks[net.key])

    # --- Cases ------------------------------------------------------------------------------------------

    def _play(self, spec: demo.CaseSpec) -> None:
        times = self._timeline(spec)
        with self._at(times[0]):
            case = self._create(spec, times[0])
        if spec.follow_up:
            self.follow_up_answers[case.pk] = spec.follow_up
        for step, planned in zip(spec.steps, times[1:], strict=True):
            case = Case.objects.select_related("requester__user", "expert__user").get(pk=case.pk)
            with self._at(planned):
                getattr(self, f"_step_{step[0]}")(case, planned, *step[1:])

    def _create(self, spec: demo.CaseSpec, planned) -> Case:
        expert = self.pros[spec.to] if spec.to in self.pros else None
        network = self.networks[spec.to[4:]] if spec.to.startswith("net:") else None
        return services.case_create(
            actor=services.actor_for(self.pros[spec.requester].user), ins_nir=self.nirs[spec.patient],
            identity=self._identity(self.patients[spec.patient]), consent=self._consent(spec.consent, planned),
            question=spec.question, context=spec.context, priority=spec.priority, mode=spec.mode, expert=expert,
            network=network, send=not spec.draft)

    def _identity(self, pat: demo.Pat) -> dict:
        doctor = self.pros.get(pat.treating)
        return {"birth_name": pat.birth_name, "used_name": pat.used_name, "first_names": pat.first_names,
                "sex": Patient.Sex.MALE if pat.sex == "1" else Patient.Sex.FEMALE,
                "birth_date": date.fromisoformat(pat.birth_date), "birth_place_code": pat.place,
                "identity_status": pat.status, "treating_doctor": doctor,
                "treating_doctor_name": "" if doctor else pat.treating}

    def _consent(self, consent: tuple | None, planned) -> dict | None:
        if consent is None:
            return None
        data = {"status": Consent.Status.GIVEN, "given_by": Consent.GivenBy.PATIENT, "representative_name": "",
                "impossible_reason": "", "impossible_detail": "", "explained_interest": True,
                "explained_practicalities": True, "explained_right_to_refuse": True,
                "informed_at": planned - timedelta(minutes=self.rng.randrange(5, 40))}
        if consent[0] == "representative":
            data.update(given_by=Consent.GivenBy.REPRESENTATIVE, representative_name=consent[1])
        elif consent[0] == "impossible":
            data.update(status=Consent.Status.IMPOSSIBLE, given_by="", impossible_reason=consent[1],
                        impossible_detail=consent[2])
        return data

    def _opening(self, professional: Professional, case: Case):
        """The user opens the case page before acting, as in the web view: a traced read, the thread read."""
        audit_log(actor=professional.user, action="case.view", kind=AuditEvent.Kind.READ, obj=case, case=case,
                  summary=case.reference)
        messaging.thread_mark_read(user=professional.user, case=case)
        return services.actor_for(professional.user)

    # --- Steps (see teleexpertise.core.demo) ------------------------------------------------------------

    def _step_claim(self, case, planned, key):
        services.case_claim(actor=self._opening(self.pros[key], case), case_id=case.pk)

    def _step_assign(self, case, planned, key):
        dispatcher = NetworkMembership.objects.get(network_id=case.network_id,
                                                   role=NetworkMembership.Role.DISPATCHER).professional
        services.case_assign(actor=self._opening(dispatcher, case), case_id=case.pk, expert=self.pros[key])

    def _step_accept(self, case, planned, days):
        clock_due = timezone.now() + timedelta(days=days)
        services.case_accept(actor=self._opening(case.expert, case), case_id=case.pk, due_at=clock_due,
                             patient_informed=True)
        due = planned + timedelta(days=days)
        Case.objects.filter(pk=case.pk).update(due_at=due)
        event = AuditEvent.objects.filter(case_id=case.pk, action="case.accept").order_by("-id").first()
        AuditEvent.objects.filter(pk=event.pk).update(summary=event.summary.replace(_paris(clock_due), _paris(due)))

    def _step_ask(self, case, planned, text):
        services.case_request_information(actor=self._opening(case.expert, case), case_id=case.pk, question=text)
        if case.state == Case.State.ACCEPTED:  # the clock stops with what was left at the planned time
            Case.objects.filter(pk=case.pk).update(deadline_remaining=max(case.due_at - planned, timedelta(0)))

    def _step_reply(self, case, planned, text):
        services.case_provide_information(actor=self._opening(case.requester, case), case_id=case.pk, answer=text)
        if case.deadline_remaining is not None:  # the clock restarts from the planned time
            Case.objects.filter(pk=case.pk).update(due_at=planned + case.deadline_remaining)

    def _step_report(self, case, planned, fields, sign=True):
        actor = self._opening(case.expert, case)
        report_save_draft(actor=actor, case_id=case.pk, data=self._report_data(fields, planned))
        if sign:
            report_sign(actor=actor, case_id=case.pk)

    def _step_draft_report(self, case, planned, fields):
        self._step_report(case, planned, fields, sign=False)

    def _step_amend(self, case, planned, changes):
        signed = case.report_versions.filter(status=ReportVersion.Status.SIGNED).order_by("-number").first()
        data = {name: getattr(signed, name) for name in CONTENT_FIELDS} | changes
        actor = self._opening(case.expert, case)
        report_save_draft(actor=actor, case_id=case.pk, data=data)
        report_sign(actor=actor, case_id=case.pk)

    def _report_data(self, fields: dict, planned) -> dict:
        data = dict(fields)
        days = data.pop("consult_in_days", None)
        data["act_at"] = planned - timedelta(minutes=self.rng.randrange(10, 30))
        if days is not None:
            data["consultation_at"] = self._slot(planned + timedelta(days=days))
        return data

    def _step_decline(self, case, planned, reason):
        services.case_decline(actor=self._opening(case.expert, case), case_id=case.pk, reason=reason)

    def _step_transfer(self, case, planned, key, note):
        services.case_transfer(actor=self._opening(case.expert, case), case_id=case.pk, note=note,
                               expert=self.pros[key])

    def _step_withdraw(self, case, planned, reason):
        services.case_withdraw(actor=self._opening(case.requester, case), case_id=case.pk, reason=reason)

    def _step_close(self, case, planned, survey=None):
        services.case_close(actor=self._opening(case.requester, case), case_id=case.pk,
                            **(survey or next(self.surveys)))

    # --- Follow-ups: asked by the hourly job once the delay has passed, answered where the spec says -------

    def _follow_ups(self) -> None:
        """Replay the hourly job at each due time, then the requester's answer a few days later."""
        delay = timedelta(days=settings.FOLLOW_UP_DELAY_DAYS)
        due = Case.objects.filter(state=Case.State.CLOSED, closed_at__lte=self.now - delay).order_by("closed_at")
        for case in due.select_related("requester__user"):
            asked = case.closed_at + delay  # the job runs day and night
            with self._at(asked):
                services.follow_ups_request_due(now=asked)
            answer = self.follow_up_answers.get(case.pk)
            if answer is not None:
                answered = self._before_now([asked, asked + timedelta(days=self.rng.uniform(1, 4))])[1]
                with self._at(answered):
                    services.follow_up_answer(actor=self._opening(case.requester, case), case_id=case.pk, **answer)

    def _step_doc(self, case, planned, name):
        """A file the requester joins to the request, through the same upload service as the web page."""
        filename, kind, content = demo_files.FILES[name](self.rng.randrange(10_000))
        document = document_services.document_add(
            actor=self._opening(case.requester, case), case_id=case.pk, kind=kind,
            upload=SimpleUploadedFile(filename, content))
        Document.objects.filter(pk=document.pk).update(uploaded_at=planned)

    def _step_msg(self, case, planned, side, text):
        author = case.requester if side == "requester" else case.expert
        services.case_post_message(actor=self._opening(author, case), case_id=case.pk, body=text)


class Command(BaseCommand):
    help = "Load the French, fictitious demo data (accounts, networks, patients, cases) unless already present."

    def handle(self, *args, **options):
        if User.objects.filter(email=demo.ADMIN_EMAIL).exists():
            self.stdout.write("Les données de démonstration sont déjà en place : rien n'a été modifié.")
        else:
            with transaction.atomic(), notification_emails_muted(), case_events_muted():
                DemoSeeder(random.Random(demo.SEED)).run()
            self.stdout.write(self.style.SUCCESS(
                f"Données de démonstration créées : {Professional.objects.count()} professionnels, "
                f"{Network.objects.count()} réseaux, {Patient.objects.count()} patients, "
                f"{Case.objects.count()} demandes de téléexpertise."))
        self._print_access()

    def _print_access(self) -> None:
        port = env_str("PORT") or "8000"  # the port `make run` serves on
        self.stdout.write(f"\nAdresse : http://127.0.0.1:{port}/")
        self.stdout.write("Connexion : cette adresse mène à la page de connexion ; saisissez l'e-mail d'un compte "
                          "ci-dessous et son mot de passe.\n")
        rows = [("E-mail", "Rôle", "Mot de passe"),
                (demo.ADMIN_EMAIL, "Administratrice de la plateforme (staff)", demo.PASSWORD)]
        rows += [(demo.account_email(pro), pro.role, demo.PASSWORD) for pro in demo.PROFESSIONALS]
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        for email, role, password in rows:
            self.stdout.write(f"  {email.ljust(widths[0])}  {role.ljust(widths[1])}  {password}")
        self.stdout.write("\nLes comptes de démonstration se connectent sans second facteur (TOTP) uniquement parce "
                          "que le mode démo est activé (DEMO_MODE=1) ; sans lui, l'enrôlement TOTP leur est demandé "
                          "comme à tout compte.")
        if not settings.DEMO_MODE:
            self.stdout.write(self.style.WARNING("Attention : DEMO_MODE n'est pas activé dans cet environnement."))
