"""Case pages: thin views that parse input, call a service or a selector, and render."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases import forms, questionnaires, selectors, services, workflow
from teleexpertise.cases.estimates import answer_estimate
from teleexpertise.cases.models import Case
from teleexpertise.cases.oncall import video_url
from teleexpertise.cases.request_forms import blocks, missing_for, request_form_for
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.documents import selectors as document_selectors
from teleexpertise.documents.forms import UploadForm
from teleexpertise.documents.models import Document
from teleexpertise.documents.previews import group_series
from teleexpertise.documents.services import may_attach
from teleexpertise.documents.views import add_uploads
from teleexpertise.messaging.services import thread_mark_read
from teleexpertise.reports.forms import PatientLinkForm
from teleexpertise.reports.patient_access import READABLE_STATES
from teleexpertise.reports.selectors import patient_links_for, report_versions, treating_doctor_unreached
from teleexpertise.reports.senders import patient_link_sender

BOXES = ("todo", "pool", "requests", "search")


def audit_case_read(request, case, summary: str) -> None:
    audit_log(actor=request.user, action="case.view", kind=AuditEvent.Kind.READ, obj=case, case=case,
              ip=client_ip(request), summary=summary)


def _page(request, queryset):
    return Paginator(queryset, settings.PAGE_SIZE).get_page(request.GET.get("page"))


@login_required
def inbox(request):
    actor = services.actor_for(request.user)
    is_expert = bool(actor.professional and actor.professional.may_be_expert)
    box = request.GET.get("box") or ("todo" if is_expert else "requests")
    box = box if box in BOXES else "requests"
    search = forms.SearchForm(request.GET or None)
    state = request.GET.get("state", "")
    if box == "search" and search.is_valid() and search.cleaned_data["q"]:
        queryset = selectors.search_cases(request.user, search.cleaned_data["q"])
    elif box == "todo":
        queryset = selectors.inbox_expert(request.user, include_closed=request.GET.get("all") == "1")
    elif box == "pool":
        queryset = selectors.pool_queue(request.user, tag=request.GET.get("tag", "").strip())
    else:
        box = "requests" if box != "search" else box
        queryset = selectors.inbox_requests(request.user, state=state if state in Case.State.values else "")
    page = _page(request, queryset)
    audit_log(actor=request.user, action="case.list", kind=AuditEvent.Kind.READ, ip=client_ip(request),
              summary=f"box={box} page={page.number}")
    return render(request, "cases/inbox.html", {
        "box": box, "page": page, "search": search, "state": state, "states": Case.State.choices,
        "is_expert": is_expert, "has_networks": bool(actor.network_roles), "professional": actor.professional,
        "tag": request.GET.get("tag", "").strip(), "live_seconds": settings.LIVE_POLL_SECONDS,
        "live_stamp": selectors.inbox_live_state(request.user)["stamp"],
        "load": list(selectors.network_load(request.user)) if box == "pool" else None,
    })


def _chosen_expert(request) -> dict:
    """`?expert=<id>` from the directory search preselects that expert (the form still checks the choice)."""
    try:
        expert = uuid.UUID(request.GET.get("expert", ""))
    except ValueError:
        return {}
    return {"recipient_kind": "expert", "expert": expert}


@login_required
def case_new(request):
    actor = services.actor_for(request.user)
    if actor.professional is None:
        return render(request, "cases/no_professional.html", status=403)
    recipient = forms.CaseRequestForm.chosen_recipient(request.POST)
    request_form = request_form_for(**recipient)
    if "refresh" in request.POST:
        return _refreshed(request, actor, recipient, request_form)
    form = forms.CaseRequestForm(request.POST or None, requester=actor.professional, request_form=request_form,
                                 initial=_chosen_expert(request))
    if request.method == "POST" and form.is_valid():
        send = "send" in request.POST
        try:
            case = services.case_create(
                actor=actor, ins_nir=form.cleaned_data["ins_nir"], identity=form.identity(), consent=form.consent(),
                question=form.cleaned_data["question"], context=form.cleaned_data["context"],
                priority=form.cleaned_data["priority"], mode=form.cleaned_data["mode"],
                submit_token=form.cleaned_data["submit_token"], send=send, answers=form.answers(),
                ip=client_ip(request), **form.recipient())
        except (WorkflowError, ValidationError) as exc:
            form.add_error(None, _messages_of(exc))
        else:
            if case.state == Case.State.SUBMITTED:
                messages.success(request, _("Demande envoyée à %(to)s.") % {"to": case.recipient_label})
            else:
                messages.success(request, _("Brouillon enregistré. Vous pourrez l'envoyer depuis cette page."))
            return redirect("cases:detail", pk=case.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "cases/new.html", {"form": form, **_recipient_context(recipient, request_form)},
                  status=status)


def _refreshed(request, actor, recipient, request_form, case=None):
    """The page again with the chosen recipient's form and expected answer time; nothing is saved and, since
    the user has not finished, no error is shown: the typed values come back as initial values."""
    initial = {name: request.POST.get(name) for name in request.POST if name != "csrfmiddlewaretoken"}
    form = forms.CaseRequestForm(requester=actor.professional, request_form=request_form, initial=initial)
    return render(request, "cases/new.html", {"form": form, "case": case,
                                              **_recipient_context(recipient, request_form)})


def _recipient_context(recipient: dict, request_form) -> dict:
    """What the page says about the chosen recipient before sending: its form's required documents and the
    expected answer time (two queries)."""
    chosen = recipient["network"] or recipient["expert"]
    labels = questionnaires.document_kinds()
    kinds = questionnaires.required_document_kinds(request_form.questionnaire) if request_form else []
    return {"recipient": chosen, "request_form": request_form,
            "required_documents": [labels.get(kind, kind) for kind in dict.fromkeys(kinds)],
            "estimate": answer_estimate(**recipient).sentence() if chosen else ""}


@login_required
def case_edit(request, pk):
    case = selectors.case_for_user(request.user, pk)
    actor = services.actor_for(request.user)
    try:
        workflow.check(actor, case, "edit_draft")
    except WorkflowError as exc:
        return _refused(request, case, workflow.BY_ACTION["edit_draft"], str(exc))
    if request.method == "GET":
        audit_case_read(request, case, "page brouillon")
    recipient = forms.CaseRequestForm.chosen_recipient(request.POST) if request.method == "POST" \
        else {"network": case.network, "expert": case.expert}
    request_form = request_form_for(**recipient)
    if "refresh" in request.POST:
        return _refreshed(request, actor, recipient, request_form, case)
    form = forms.CaseRequestForm(request.POST or None, requester=actor.professional, request_form=request_form,
                                 initial=forms.CaseRequestForm.initial_from(case))
    if request.method == "POST" and form.is_valid():
        try:
            case = services.case_update_draft(
                actor=actor, case_id=case.pk, ins_nir=form.cleaned_data["ins_nir"], identity=form.identity(),
                consent=form.consent(), fields=form.case_fields(), send="send" in request.POST,
                answers=form.answers(), ip=client_ip(request))
        except (WorkflowError, ValidationError) as exc:
            form.add_error(None, _messages_of(exc))
        else:
            sent = case.state == Case.State.SUBMITTED
            messages.success(request, _("Demande envoyée à %(to)s.") % {"to": case.recipient_label} if sent
                             else _("Brouillon enregistré."))
            return redirect("cases:detail", pk=case.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "cases/new.html", {"form": form, "case": case,
                                              **_recipient_context(recipient, request_form)}, status=status)


def _messages_of(exc) -> list[str]:
    return list(exc.messages) if isinstance(exc, ValidationError) else [str(exc)]


@login_required
def case_detail(request, pk):
    case = selectors.case_for_user(request.user, pk, with_closing=True)
    actor = services.actor_for(request.user)
    audit_case_read(request, case, case.reference)
    thread = list(selectors.case_thread(case))
    thread_mark_read(user=request.user, case=case)
    roles = workflow.roles_for(actor, case)
    versions = [v for v in report_versions(case) if v.is_signed or workflow.EXPERT in roles]
    documents = list(document_selectors.case_documents(case))
    return render(request, "cases/detail.html", {
        "case": case, "actions": workflow.available_actions(actor, case), "roles": roles,
        "documents": documents, "upload_form": _upload_form(actor, case),
        "dicom_studies": group_series([{**d.details, "document": d} for d in documents if d.category == "dicom"]),
        "thread": thread, "message_form": forms.MessageForm() if workflow.may_post_message(actor, case) else None,
        "report_versions": versions, "treating_doctor_unreached": treating_doctor_unreached(case.patient),
        "timeline": list(selectors.case_timeline(case)), "video_url": video_url(case, roles),
        "live_seconds": settings.LIVE_POLL_SECONDS,
        "live_stamp": selectors.live_stamp(case) if case.state in Case.OPEN_STATES else "",
        "access_history": list(selectors.case_access_history(case)),
        **_closing_context(case, roles),
        **_patient_access(case, roles, versions),
        **_form_context(case, roles),
    })


def _form_context(case, roles) -> dict:
    """The structured form's answers; for the requester's draft, what is missing and the expected answer time."""
    context = {"form_answers": questionnaires.answered_rows(case.request_form.questionnaire,
                                                            case.questionnaire_response)
               if case.request_form_id else []}
    if case.state == Case.State.DRAFT and workflow.REQUESTER in roles:
        context.update(_before_sending(case))
    return context


def _before_sending(case) -> dict:
    request_form = request_form_for(network=case.network, expert=case.expert)
    recipient = {"network": case.network if not case.expert_id else None, "expert": case.expert}
    return {"missing": missing_for(case, request_form), "missing_blocks": blocks(request_form, case),
            "estimate": answer_estimate(**recipient).sentence() if case.expert_id or case.network_id else ""}


def _closing_context(case, roles) -> dict:
    """The closing survey and the follow-up (joined by case_for_user), and whether this user should answer it."""
    survey = getattr(case, "closing_survey", None)
    follow_up = getattr(case, "follow_up", None)
    return {"closing_survey": survey, "follow_up": follow_up, "follow_up_title": services.follow_up_title(),
            "follow_up_to_answer": bool(follow_up and not follow_up.is_answered and workflow.REQUESTER in roles)}


def _patient_access(case, roles, versions) -> dict:
    """The requester's panel: links sent to the patient, and the form once a signed report exists."""
    links = patient_links_for(case, roles)
    may_send = links is not None and case.state in READABLE_STATES and any(v.is_signed for v in versions)
    return {"patient_links": links, "patient_link_days": settings.PATIENT_LINK_DAYS,
            "patient_link_form": PatientLinkForm(channels=patient_link_sender().channels) if may_send else None}


def _upload_form(actor, case):
    """The upload form for what this user may attach now: the request (requester) or the report (expert)."""
    target = Document.AttachedTo.INFORMATION if case.state == Case.State.AWAITING_INFORMATION \
        else Document.AttachedTo.REQUEST
    if may_attach(actor, case, target):
        return UploadForm(initial={"attached_to": target})
    if may_attach(actor, case, Document.AttachedTo.REPORT):
        return UploadForm(initial={"attached_to": Document.AttachedTo.REPORT, "kind": Document.Kind.REPORT})
    return None


ACTION_FORMS = {
    "submit": forms.ConfirmForm, "claim": forms.ConfirmForm, "close": forms.ClosingSurveyForm,
    "assign": forms.AssignForm, "accept": forms.AcceptForm, "decline": forms.DeclineForm,
    "request_information": forms.InformationRequestForm, "provide_information": forms.InformationResponseForm,
    "transfer": forms.TransferForm, "withdraw": forms.WithdrawForm, "tag": forms.TagForm,
    "acknowledge": forms.ConfirmForm,
}


def _run_action(action, actor, case, data, ip):
    if action == "submit":
        return services.case_submit(actor=actor, case_id=case.pk, ip=ip)
    if action == "claim":
        return services.case_claim(actor=actor, case_id=case.pk, ip=ip)
    if action == "acknowledge":
        return services.case_acknowledge(actor=actor, case_id=case.pk, ip=ip)
    if action == "tag":
        return services.case_tag(actor=actor, case_id=case.pk, tags=data["tags"], ip=ip)
    if action == "close":
        return services.case_close(actor=actor, case_id=case.pk, usefulness=data["usefulness"],
                                   avoided=data["avoided"], technical_incidents=data["technical_incidents"], ip=ip)
    if action == "assign":
        return services.case_assign(actor=actor, case_id=case.pk, expert=data["expert"], ip=ip)
    if action == "accept":
        return services.case_accept(actor=actor, case_id=case.pk, due_at=data["due_at"],
                                    patient_informed=data["patient_informed"], ip=ip)
    if action == "decline":
        return services.case_decline(actor=actor, case_id=case.pk, reason=data["reason"], ip=ip)
    if action == "request_information":
        return services.case_request_information(actor=actor, case_id=case.pk, question=data["question"], ip=ip)
    if action == "provide_information":
        return services.case_provide_information(actor=actor, case_id=case.pk, answer=data["answer"], ip=ip)
    if action == "transfer":
        return services.case_transfer(actor=actor, case_id=case.pk, note=data["note"], expert=data["expert"],
                                      network=data["network"], ip=ip)
    return services.case_withdraw(actor=actor, case_id=case.pk, reason=data["reason"], ip=ip)


@login_required
def case_action(request, pk, action):
    case = selectors.case_for_user(request.user, pk)
    if action in ("answer", "amend_report"):
        return redirect("reports:edit", pk=case.pk)
    if action == "edit_draft":
        return redirect("cases:edit", pk=case.pk)
    form_class = ACTION_FORMS.get(action)
    transition = workflow.BY_ACTION.get(action)
    if form_class is None or transition is None:
        return _refused(request, case, None, _("Action inconnue."))
    actor = services.actor_for(request.user)
    try:
        workflow.check(actor, case, action)
    except WorkflowError as exc:
        return _refused(request, case, transition, str(exc))
    if request.method == "GET":
        audit_case_read(request, case, f"page {action}")
    extra = _before_sending(case) if action == "submit" else {}
    kwargs = {"case": case} if form_class in (forms.AssignForm, forms.TransferForm, forms.TagForm) else {}
    form = form_class(*((request.POST, request.FILES) if request.method == "POST" else (None,)), **kwargs)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        if action == "accept":
            data["due_at"] = form.due_at()
        if data.get("attachments"):
            # Files first, while the case still awaits them; a refused file keeps the page and the typed answer.
            added, errors = add_uploads(request, case=case, files=data["attachments"],
                                        kind=data["attachment_kind"] or Document.Kind.OTHER,
                                        attached_to=Document.AttachedTo.INFORMATION)
            if errors:
                for error in errors:
                    form.add_error("attachments", error)
                for document in added:
                    messages.info(request, _("Déjà ajouté : %(name)s") % {"name": document.name})
                return render(request, "cases/action.html", {"case": case, "transition": transition, "form": form},
                              status=400)
        try:
            _run_action(action, actor, case, data, client_ip(request))
        except WorkflowError as exc:
            return _refused(request, case, transition, str(exc))
        except ValidationError as exc:
            form.add_error(None, _messages_of(exc))
        else:
            messages.success(request, f"{transition.done} — {case.reference}")
            return redirect("cases:detail", pk=case.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "cases/action.html", {"case": case, "transition": transition, "form": form, **extra},
                  status=status)


@login_required
def case_follow_up(request, pk):
    """The requester says what happened after the opinion; once, then the expert reads it on the case page."""
    case = selectors.case_for_user(request.user, pk)
    actor = services.actor_for(request.user)
    title = services.follow_up_title()
    try:
        services.follow_up_to_answer(actor, case)
    except WorkflowError as exc:
        return _refused(request, case, None, str(exc))
    if request.method == "GET":
        audit_case_read(request, case, "page suivi")
    form = forms.FollowUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.follow_up_answer(actor=actor, case_id=case.pk, ip=client_ip(request), **form.cleaned_data)
        except WorkflowError as exc:
            return _refused(request, case, None, str(exc))
        except ValidationError as exc:
            form.add_error(None, _messages_of(exc))
        else:
            messages.success(request, _("Suivi envoyé à l'expert — %(ref)s") % {"ref": case.reference})
            return redirect("cases:detail", pk=case.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "cases/follow_up.html", {"case": case, "form": form, "title": title}, status=status)


def _refused(request, case, transition, message):
    return render(request, "cases/action_refused.html", {"case": case, "transition": transition,
                                                         "message": message}, status=403)


@login_required
@require_POST
def case_message(request, pk):
    case = selectors.case_for_user(request.user, pk)
    form = forms.MessageForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Le message est vide."))
        return redirect("cases:detail", pk=case.pk)
    try:
        message = services.case_post_message(actor=services.actor_for(request.user), case_id=case.pk,
                                             body=form.cleaned_data["body"], ip=client_ip(request))
    except WorkflowError as exc:
        return _refused(request, case, None, str(exc))
    errors = add_uploads(request, case=case, files=form.cleaned_data["attachments"],
                            kind=form.cleaned_data["attachment_kind"] or Document.Kind.OTHER,
                            attached_to=Document.AttachedTo.MESSAGE, message=message)[1]
    messages.success(request, _("Message envoyé."))
    for error in errors:
        messages.error(request, error)
    return redirect(f"{case.get_absolute_url()}#fil")


@login_required
def patient_detail(request, pk):
    patient = selectors.patient_for_user(request.user, pk)
    audit_log(actor=request.user, action="patient.view", kind=AuditEvent.Kind.READ, obj=patient, patient=patient,
              ip=client_ip(request), summary=patient.display_name)
    cases = selectors.patient_cases_for_user(request.user, patient)
    return render(request, "cases/patient.html", {"patient": patient, "cases": cases[:100]})


# --- Live updates (polled by static/js/live.js). Not audited: they answer stamps and states, no patient data;
# when a stamp changes the script reloads the page's live regions with an ordinary, audited page read.

@login_required
def case_live(request, pk):
    state = selectors.case_live_state(request.user, pk)
    state["message"] = _("Demande mise à jour : %(state)s") % {"state": state["state_label"]}
    return JsonResponse(state)


@login_required
def inbox_live(request):
    state = selectors.inbox_live_state(request.user)
    state["message"] = ngettext("%(n)s demande synchrone attend votre accusé de réception.",
                               "%(n)s demandes synchrones attendent votre accusé de réception.",
                               state["paged"]) % {"n": state["paged"]} if state["paged"] else _("Liste mise à jour.")
    return JsonResponse(state)
