"""Forms of the case pages. They parse and validate input; the services decide and write."""

import uuid
from datetime import timedelta

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from teleexpertise.cases import questionnaires
from teleexpertise.cases.models import NONE, Answer, Case, ClosingSurvey, FollowUp, RequestForm
from teleexpertise.directory.models import Professional
from teleexpertise.directory.selectors import (
    doctor,
    doctors,
    expert_selectable,
    experts_selectable,
    network_active,
    networks_active,
)
from teleexpertise.documents.forms import MultipleFileField
from teleexpertise.documents.models import Document
from teleexpertise.patients.identity import normalise_nir
from teleexpertise.patients.models import Consent, Patient


class LookupChoiceField(forms.ModelChoiceField):
    """A model choice whose submitted id is checked by `lookup(id)` (a compiled selector, None when the id is not a
    valid choice) when one is set, instead of building `queryset.get(pk=...)` anew on each submission: on the API's
    request creation those three lookups cost a tenth of the call. `queryset` still lists a page's choices and
    must hold the same rows as `lookup` accepts."""

    lookup = None

    def to_python(self, value):
        if self.lookup is None or value in self.empty_values or isinstance(value, self.queryset.model):
            return super().to_python(value)
        try:
            found = self.lookup(uuid.UUID(str(value)))
        except ValueError:
            found = None
        if found is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice",
                                  params={"value": value})
        return found


class ExpertChoiceField(LookupChoiceField):
    def label_from_instance(self, obj):
        place = f" — {obj.organisation.name}" if obj.organisation_id else ""
        return f"{obj.display_name}, {obj.role_label}{place}"


class CaseRequestForm(forms.Form):
    """The new-request form: patient, consent, recipient, question. Everything typed is kept on error."""

    submit_token = forms.UUIDField(widget=forms.HiddenInput)

    ins_nir = forms.CharField(label=_("Matricule INS (NIR, 15 caractères)"), max_length=21,
                              widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "text",
                                                            "placeholder": "2 84 05 75 123 456 78"}))
    birth_name = forms.CharField(label=_("Nom de naissance"), max_length=150)
    used_name = forms.CharField(label=_("Nom utilisé"), max_length=150, required=False)
    first_names = forms.CharField(label=_("Prénoms de naissance"), max_length=200)
    sex = forms.ChoiceField(label=_("Sexe"), choices=Patient.Sex.choices, widget=forms.RadioSelect)
    birth_date = forms.DateField(label=_("Date de naissance"), widget=forms.DateInput(attrs={"type": "date"}))
    birth_place_code = forms.CharField(label=_("Code INSEE du lieu de naissance"), max_length=5, required=False)
    identity_status = forms.ChoiceField(label=_("Statut de l'identité"), choices=Patient.IdentityStatus.choices,
                                        initial=Patient.IdentityStatus.PROVISIONAL)
    treating_doctor = ExpertChoiceField(label=_("Médecin traitant (annuaire)"), required=False, queryset=None)
    treating_doctor_name = forms.CharField(label=_("Ou médecin traitant hors annuaire"), max_length=200,
                                           required=False)

    consent_status = forms.ChoiceField(label=_("Consentement du patient"), choices=Consent.Status.choices,
                                       widget=forms.RadioSelect)
    given_by = forms.ChoiceField(label=_("Exprimé par"), choices=Consent.GivenBy.choices, required=False,
                                 initial=Consent.GivenBy.PATIENT)
    representative_name = forms.CharField(label=_("Nom du représentant légal"), max_length=200, required=False)
    impossible_reason = forms.ChoiceField(label=_("Pourquoi le consentement n'a pas pu être recueilli"),
                                          choices=[("", "—"), *Consent.ImpossibleReason.choices], required=False)
    impossible_detail = forms.CharField(label=_("Précisions"), max_length=500, required=False)
    informed_at = forms.DateTimeField(label=_("Patient informé le"),
                                      widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                 format="%Y-%m-%dT%H:%M"))
    explained_interest = forms.BooleanField(label=_("J'ai expliqué l'intérêt de la téléexpertise"), required=False)
    explained_practicalities = forms.BooleanField(label=_("J'ai expliqué son déroulement"), required=False)
    explained_right_to_refuse = forms.BooleanField(label=_("J'ai rappelé le droit de refuser"), required=False)

    recipient_kind = forms.ChoiceField(
        label=_("Destinataire"), widget=forms.RadioSelect, initial="network",
        choices=[("network", _("Un réseau (file partagée)")), ("expert", _("Un expert nommé"))])
    network = LookupChoiceField(label=_("Réseau"), required=False, queryset=None)
    expert = ExpertChoiceField(label=_("Expert requis"), required=False, queryset=None)
    question = forms.CharField(label=_("Question posée à l'expert"), max_length=4000,
                               widget=forms.Textarea(attrs={"rows": 4}))
    context = forms.CharField(label=_("Contexte clinique (antécédents, traitements, résultats)"), max_length=20000,
                              required=False, widget=forms.Textarea(attrs={"rows": 6}))
    priority = forms.ChoiceField(label=_("Priorité"), choices=Case.Priority.choices, initial=Case.Priority.ROUTINE,
                                 widget=forms.RadioSelect)
    mode = forms.ChoiceField(label=_("Modalité"), choices=Case.Mode.choices, initial=Case.Mode.ASYNCHRONOUS,
                             widget=forms.RadioSelect)

    def __init__(self, *args, requester: Professional | None = None, request_form: RequestForm | None = None,
                 **kwargs):
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("submit_token", uuid.uuid4())
        kwargs["initial"].setdefault("informed_at", timezone.localtime().replace(second=0, microsecond=0))
        super().__init__(*args, **kwargs)
        # The recipient's structured form: one field per Questionnaire item, shown in step 4.
        self.request_form = request_form
        self.fields.update(questionnaires.form_fields(request_form.questionnaire) if request_form else {})
        experts = experts_selectable()
        if requester is not None:
            experts = experts.exclude(pk=requester.pk)
        self.fields["expert"].queryset = experts
        self.fields["expert"].lookup = lambda pk: None if requester and pk == requester.pk else expert_selectable(pk)
        self.fields["treating_doctor"].queryset = doctors()
        self.fields["treating_doctor"].lookup = doctor
        self.fields["network"].queryset = networks_active()
        self.fields["network"].lookup = network_active

    def clean_ins_nir(self):
        return normalise_nir(self.cleaned_data["ins_nir"])

    def clean_birth_date(self):
        value = self.cleaned_data["birth_date"]
        if value > timezone.localdate():
            raise ValidationError(_("La date de naissance est dans le futur."))
        return value

    def clean_informed_at(self):
        value = self.cleaned_data["informed_at"]
        if value > timezone.now() + timedelta(minutes=5):
            raise ValidationError(_("L'information du patient ne peut pas être datée dans le futur."))
        return value

    def clean(self):
        data = super().clean()
        self._clean_consent(data)
        self._clean_recipient(data)
        return data

    def _clean_consent(self, data):
        status = data.get("consent_status")
        if status == Consent.Status.GIVEN:
            for name in ("explained_interest", "explained_practicalities", "explained_right_to_refuse"):
                if not data.get(name):
                    self.add_error(name, _("Le patient doit être informé de ce point avant de consentir."))
            if data.get("given_by") == Consent.GivenBy.REPRESENTATIVE and not data.get("representative_name"):
                self.add_error("representative_name", _("Indiquez le nom du représentant légal."))
        if status == Consent.Status.IMPOSSIBLE and not data.get("impossible_reason"):
            self.add_error("impossible_reason", _("Indiquez pourquoi le consentement n'a pas pu être recueilli."))

    def _clean_recipient(self, data):
        kind = data.get("recipient_kind")
        if kind == "network" and not data.get("network"):
            self.add_error("network", _("Choisissez le réseau destinataire."))
        if kind == "expert" and not data.get("expert"):
            self.add_error("expert", _("Choisissez l'expert requis."))

    def questionnaire_fields(self):
        return [self[name] for name in self.fields if name.startswith(questionnaires.FIELD_PREFIX)]

    def answers(self) -> dict:
        """{linkId: value} of the structured form's items answered (empty without a form)."""
        if self.request_form is None:
            return {}
        return questionnaires.answers_from_form(self.request_form.questionnaire, self.cleaned_data)

    @staticmethod
    def chosen_recipient(data) -> dict:
        """{"network": ..., "expert": ...} named by raw form data (None when absent or invalid), to pick the
        structured form before the form is built."""
        kind, network, expert = data.get("recipient_kind"), None, None
        try:
            if kind == "network" and data.get("network"):
                network = network_active(uuid.UUID(str(data["network"])))
            elif kind == "expert" and data.get("expert"):
                expert = expert_selectable(uuid.UUID(str(data["expert"])))
        except ValueError:  # not a UUID
            pass
        return {"network": network, "expert": expert}

    def identity(self) -> dict:
        d = self.cleaned_data
        names = ("birth_name", "used_name", "first_names", "sex", "birth_date", "birth_place_code",
                 "identity_status", "treating_doctor", "treating_doctor_name")
        return {n: d[n] for n in names}

    def consent(self) -> dict:
        d = self.cleaned_data
        return {
            "status": d["consent_status"],
            "given_by": d["given_by"] if d["consent_status"] == Consent.Status.GIVEN else "",
            "representative_name": d["representative_name"],
            "impossible_reason": d["impossible_reason"] if d["consent_status"] == Consent.Status.IMPOSSIBLE else "",
            "impossible_detail": d["impossible_detail"],
            "informed_at": d["informed_at"],
            "explained_interest": d["explained_interest"],
            "explained_practicalities": d["explained_practicalities"],
            "explained_right_to_refuse": d["explained_right_to_refuse"],
        }

    @classmethod
    def initial_from(cls, case: Case) -> dict:
        """The form as the requester left the draft."""
        patient, consent = case.patient, case.consent
        initial = {name: getattr(patient, name) for name in (
            "birth_name", "used_name", "first_names", "sex", "birth_date", "birth_place_code", "identity_status",
            "treating_doctor", "treating_doctor_name")}
        initial.update(ins_nir=patient.ins_nir, question=case.question, context=case.context, priority=case.priority,
                       mode=case.mode, network=case.network, expert=case.expert, submit_token=uuid.uuid4(),
                       recipient_kind="expert" if case.expert_id else "network",
                       **questionnaires.initial_from_answers(questionnaires.answers_of(case.questionnaire_response)))
        if consent is not None:
            initial.update(consent_status=consent.status, given_by=consent.given_by,
                           representative_name=consent.representative_name,
                           impossible_reason=consent.impossible_reason, impossible_detail=consent.impossible_detail,
                           informed_at=timezone.localtime(consent.informed_at).replace(second=0, microsecond=0),
                           explained_interest=consent.explained_interest,
                           explained_practicalities=consent.explained_practicalities,
                           explained_right_to_refuse=consent.explained_right_to_refuse)
        return initial

    def case_fields(self) -> dict:
        d = self.cleaned_data
        return {"question": d["question"], "context": d["context"], "priority": d["priority"], "mode": d["mode"],
                **self.recipient()}

    def recipient(self) -> dict:
        d = self.cleaned_data
        if d["recipient_kind"] == "expert":
            return {"expert": d["expert"], "network": None}
        return {"expert": None, "network": d["network"]}


# --- One small form per workflow action ----------------------------------------------------------------

class ConfirmForm(forms.Form):
    pass


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Motif"), widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)


class DeclineForm(ReasonForm):
    reason = forms.CharField(label=_("Motif de non-réalisation (visible par le requérant)"),
                             widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)


class WithdrawForm(ReasonForm):
    reason = forms.CharField(label=_("Pourquoi retirez-vous la demande ?"), widget=forms.Textarea(attrs={"rows": 3}),
                             max_length=4000)


class InformationRequestForm(forms.Form):
    question = forms.CharField(label=_("Compléments attendus (examens, photos, antécédents…)"),
                               widget=forms.Textarea(attrs={"rows": 4}), max_length=4000)


class AttachmentsMixin(forms.Form):
    """Optional files sent with a message; they go through the documents service like any upload."""

    attachment_kind = forms.ChoiceField(label=_("Type des pièces jointes"), choices=Document.Kind.choices,
                                        initial=Document.Kind.PHOTO, required=False)
    attachments = MultipleFileField(label=_("Pièces jointes (facultatif)"), required=False)


class InformationResponseForm(AttachmentsMixin):
    answer = forms.CharField(label=_("Votre réponse à l'expert"), widget=forms.Textarea(attrs={"rows": 6}),
                             max_length=20000)
    field_order = ["answer", "attachment_kind", "attachments"]


def _delay_choices():
    days = settings.CASE_MAX_DEADLINE_DAYS
    steps = [d for d in (1, 2, 3, 5, 7, 10, 14) if d <= days] or [days]
    if steps[-1] != days:
        steps.append(days)
    return [(str(d), ngettext_lazy("%(n)s jour", "%(n)s jours", d) % {"n": d}) for d in steps]


class AcceptForm(forms.Form):
    delay_days = forms.TypedChoiceField(label=_("Délai de réponse"), coerce=int, initial="2")
    patient_informed = forms.BooleanField(
        label=_("Le patient sera informé de ce délai par le requérant (le délai lui est communiqué)"), required=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["delay_days"].choices = _delay_choices()

    def due_at(self):
        return timezone.now() + timedelta(days=self.cleaned_data["delay_days"])


class LoadExpertChoiceField(ExpertChoiceField):
    """Each member with their open cases, so that the dispatcher sees the load while choosing."""

    def label_from_instance(self, obj):
        load = _("demandes en cours : %(n)s") % {"n": obj.open_cases}
        return f"{super().label_from_instance(obj)} — {load}"


class AssignForm(forms.Form):
    expert = LoadExpertChoiceField(label=_("Membre du réseau"), queryset=None)

    def __init__(self, *args, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expert"].queryset = (
            experts_selectable().filter(memberships__network_id=case.network_id).exclude(pk=case.requester_id)
            .annotate(open_cases=Count("expert_cases", filter=Q(expert_cases__state__in=Case.OPEN_STATES))))


class TagForm(forms.Form):
    tags = forms.CharField(label=_("Étiquettes"), required=False, max_length=500,
                           help_text=_("Séparées par des virgules, par exemple : photo floue, à revoir lundi. "
                                       "Laissez vide pour tout retirer."))

    def __init__(self, *args, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tags"].initial = ", ".join(case.tags.values_list("label", flat=True))


class TransferForm(forms.Form):
    network = forms.ModelChoiceField(label=_("Vers un réseau"), queryset=None, required=False)
    expert = ExpertChoiceField(label=_("Ou vers un expert"), queryset=None, required=False)
    note = forms.CharField(label=_("Note de transfert"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)

    def __init__(self, *args, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["network"].queryset = networks_active().exclude(pk=case.network_id) if case.network_id \
            else networks_active()
        self.fields["expert"].queryset = experts_selectable().exclude(pk__in=[case.expert_id, case.requester_id])

    def clean(self):
        data = super().clean()
        if bool(data.get("network")) == bool(data.get("expert")):
            raise ValidationError(_("Choisissez soit un réseau, soit un expert."))
        return data


class SeveralChoiceField(forms.MultipleChoiceField):
    """Boxes to tick, one of which ("aucun" / "non") excludes the others."""

    widget = forms.CheckboxSelectMultiple

    def validate(self, value):
        super().validate(value)
        if NONE in value and len(value) > 1:
            raise ValidationError(_("« %(none)s » ne peut pas être coché avec une autre réponse.")
                                  % {"none": dict(self.choices)[NONE]}, code="exclusive")


class ClosingSurveyForm(forms.Form):
    """Closing asks three short questions: they tell the expert what the opinion changed."""

    usefulness = forms.ChoiceField(label=_("L'avis de l'expert vous a-t-il été utile ?"), choices=Answer.choices,
                                   widget=forms.RadioSelect,
                                   error_messages={"required": _("Indiquez si l'avis vous a été utile.")})
    avoided = SeveralChoiceField(label=_("Grâce à cet avis, qu'est-ce qui a été évité ?"),
                                 choices=ClosingSurvey.AVOIDED_CHOICES,
                                 error_messages={"required": _("Cochez ce qui a été évité, ou « Aucun ».")})
    technical_incidents = forms.CharField(label=_("Incidents techniques (facultatif)"), required=False,
                                          max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class FollowUpForm(forms.Form):
    advice_followed = forms.ChoiceField(
        label=_("Les conseils de l'expert ont-ils été suivis ?"), choices=Answer.choices, widget=forms.RadioSelect,
        error_messages={"required": _("Indiquez si les conseils de l'expert ont été suivis.")})
    seen = SeveralChoiceField(label=_("Depuis, le patient a-t-il été vu ?"), choices=FollowUp.SEEN_CHOICES,
                              error_messages={"required": _("Indiquez si le patient a été vu depuis, ou « Non ».")})
    outcome = forms.CharField(label=_("Évolution du patient"), max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 4}),
                              error_messages={"required": _("Décrivez l'évolution du patient.")})


class MessageForm(AttachmentsMixin):
    body = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 3}), max_length=20000)
    field_order = ["body", "attachment_kind", "attachments"]


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Patient ou numéro de demande"), max_length=100, required=False)


