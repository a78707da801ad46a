"""The tele-expertise case (demande de téléexpertise): one request about one patient and what follows."""

import secrets
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from teleexpertise.cases.questionnaires import validate_questionnaire
from teleexpertise.directory.models import Network, Professional, Specialty
from teleexpertise.patients.models import Consent, Patient

_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread


def new_reference() -> str:
    """TE-XXXXX-XXXXX: 50 random bits, short enough to read over the phone."""
    chars = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))
    return f"TE-{chars[:5]}-{chars[5:]}"


class RequestForm(models.Model):
    """A structured request form: a FHIR R4B Questionnaire, validated when an administrator saves it.

    A network uses the active form attached to it (`networks`); a request to a named expert uses the active form
    of the expert's specialty. `blocks_incomplete` makes the completeness check refuse sending to a network.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(_("titre"), max_length=200)
    specialty = models.ForeignKey(Specialty, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="request_forms", verbose_name=_("spécialité"),
                                  help_text=_("Formulaire proposé pour une demande à un expert nommé de cette "
                                              "spécialité."))
    networks = models.ManyToManyField(Network, blank=True, related_name="request_forms", verbose_name=_("réseaux"),
                                      help_text=_("Réseaux dont les demandes utilisent ce formulaire."))
    questionnaire = models.JSONField(_("Questionnaire FHIR (JSON)"))
    blocks_incomplete = models.BooleanField(
        _("bloquer l'envoi d'une demande incomplète"), default=True,
        help_text=_("Une demande à un réseau de ce formulaire ne peut pas être envoyée tant qu'il manque une "
                    "réponse obligatoire ou un document requis."))
    is_active = models.BooleanField(_("actif"), default=True)
    updated_at = models.DateTimeField(_("mis à jour le"), auto_now=True)

    class Meta:
        verbose_name = _("formulaire de demande")
        verbose_name_plural = _("formulaires de demande")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        try:
            validate_questionnaire(self.questionnaire)
        except ValidationError as exc:
            raise ValidationError({"questionnaire": exc.messages}) from None


class Case(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("Brouillon")
        SUBMITTED = "submitted", _("Envoyée")
        TAKEN = "taken", _("Prise en charge")
        AWAITING_INFORMATION = "awaiting_information", _("Compléments demandés")
        ACCEPTED = "accepted", _("Acceptée")
        DECLINED = "declined", _("Non réalisable")
        ANSWERED = "answered", _("Répondue")
        CLOSED = "closed", _("Clôturée")
        WITHDRAWN = "withdrawn", _("Retirée")

    class Priority(models.TextChoices):
        ROUTINE = "routine", _("Normale")
        URGENT = "urgent", _("Urgente")

    class Mode(models.TextChoices):
        ASYNCHRONOUS = "asynchronous", _("Asynchrone")
        SYNCHRONOUS = "synchronous", _("Synchrone (immédiate)")

    OPEN_STATES = (State.SUBMITTED, State.TAKEN, State.AWAITING_INFORMATION, State.ACCEPTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(_("numéro"), max_length=16, unique=True, default=new_reference, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="cases", verbose_name=_("patient"))
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, null=True, blank=True, related_name="cases",
                                verbose_name=_("consentement"))
    requester = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="requested_cases",
                                  verbose_name=_("requérant"))
    expert = models.ForeignKey(Professional, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="expert_cases", verbose_name=_("expert requis"))
    network = models.ForeignKey(Network, on_delete=models.PROTECT, null=True, blank=True, related_name="cases",
                                verbose_name=_("réseau"))
    question = models.TextField(_("question posée"))
    context = models.TextField(_("contexte clinique"), blank=True)
    priority = models.CharField(_("priorité"), max_length=16, choices=Priority.choices, default=Priority.ROUTINE)
    mode = models.CharField(_("modalité"), max_length=16, choices=Mode.choices, default=Mode.ASYNCHRONOUS)
    state = models.CharField(_("état"), max_length=24, choices=State.choices, default=State.DRAFT)

    due_at = models.DateTimeField(_("échéance"), null=True, blank=True)
    # While information is awaited the deadline clock stops: the time left is kept here and
    # due_at moves on by the pause when the requester answers.
    deadline_remaining = models.DurationField(_("délai restant (suspendu)"), null=True, blank=True)
    resume_state = models.CharField(max_length=24, choices=State.choices, blank=True)
    patient_informed_of_deadline = models.BooleanField(_("patient informé du délai"), default=False)
    decline_reason = models.TextField(_("motif de non-réalisation"), blank=True)
    withdraw_reason = models.TextField(_("motif du retrait"), blank=True)
    # The structured form answered and the answers, a FHIR QuestionnaireResponse ({} when there is no form).
    request_form = models.ForeignKey(RequestForm, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="cases", verbose_name=_("formulaire de demande"))
    questionnaire_response = models.JSONField(_("réponses au formulaire (QuestionnaireResponse)"), default=dict,
                                              blank=True)

    submit_token = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(_("créée le"), default=timezone.now)
    updated_at = models.DateTimeField(_("mise à jour le"), default=timezone.now)
    submitted_at = models.DateTimeField(_("envoyée le"), null=True, blank=True)
    taken_at = models.DateTimeField(_("prise en charge le"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("acceptée le"), null=True, blank=True)
    answered_at = models.DateTimeField(_("répondue le"), null=True, blank=True)
    closed_at = models.DateTimeField(_("terminée le"), null=True, blank=True)

    class Meta:
        verbose_name = _("demande de téléexpertise")
        verbose_name_plural = _("demandes de téléexpertise")
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["expert", "state", "due_at"], name="case_expert_inbox"),
            models.Index(fields=["requester", "state", "updated_at"], name="case_requester_inbox"),
            models.Index(fields=["network", "state"], name="case_pool_queue",
                         condition=Q(expert__isnull=True)),
            # The hourly follow-up job looks for cases closed a given time ago.
            models.Index(fields=["closed_at"], name="case_closed_at", condition=Q(state="closed")),
        ]
        constraints = [
            models.CheckConstraint(
                name="case_submitted_has_recipient",
                condition=Q(state="draft") | Q(expert__isnull=False) | Q(network__isnull=False),
            ),
            models.CheckConstraint(
                name="case_taken_has_expert",
                condition=~Q(state__in=["taken", "accepted", "answered"]) | Q(expert__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def get_absolute_url(self) -> str:
        return reverse("cases:detail", args=[self.pk])

    @property
    def is_pooled(self) -> bool:
        return self.state == self.State.SUBMITTED and self.expert_id is None and self.network_id is not None

    @property
    def is_overdue(self) -> bool:
        return self.state == self.State.ACCEPTED and self.due_at is not None and self.due_at < timezone.now()

    @property
    def recipient_label(self) -> str:
        if self.expert_id:
            return self.expert.display_name
        return str(self.network) if self.network_id else ""


class Answer(models.TextChoices):
    """Yes / partly / no: how useful the opinion was, how far its advice was followed."""

    YES = "yes", _("Oui")
    PARTLY = "partly", _("En partie")
    NO = "no", _("Non")


NONE = "none"  # the "aucun" / "non" box of a several-choice question; exclusive of the others


class ClosingSurvey(models.Model):
    """What the requester says when closing a case (HAS grid: satisfaction, avoided care, technical incidents).

    "Avoided" is three flags rather than a list so that indicators count them with plain SQL; all three false
    is the explicit answer "aucun" (the form does not accept an empty answer).
    """

    AVOIDED = {"visit": "avoided_visit", "emergency": "avoided_emergency",
               "hospitalisation": "avoided_hospitalisation"}  # form choice -> field
    AVOIDED_CHOICES = (("visit", _("Consultation en présentiel")), ("emergency", _("Passage aux urgences")),
                       ("hospitalisation", _("Hospitalisation")), (NONE, _("Aucun")))

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="closing_survey")
    usefulness = models.CharField(_("avis utile"), max_length=8, choices=Answer.choices)
    avoided_visit = models.BooleanField(_("consultation en présentiel évitée"), default=False)
    avoided_emergency = models.BooleanField(_("passage aux urgences évité"), default=False)
    avoided_hospitalisation = models.BooleanField(_("hospitalisation évitée"), default=False)
    technical_incidents = models.TextField(_("incidents techniques"), blank=True)
    answered_by = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+")
    answered_at = models.DateTimeField(_("répondu le"), default=timezone.now)

    class Meta:
        verbose_name = _("questionnaire de clôture")
        verbose_name_plural = _("questionnaires de clôture")

    def __str__(self) -> str:
        return f"{self.case_id}: {self.usefulness}"

    @property
    def avoided_labels(self) -> list[str]:
        return _labels(self, self.AVOIDED, self.AVOIDED_CHOICES)


class FollowUp(models.Model):
    """Asked of the requester FOLLOW_UP_DELAY_DAYS after closing: what happened next. Shown to the expert.

    One row a case (unique): the periodic job creates it, so two workers cannot ask twice; the requester's
    answer fills it once and is never rewritten (a later addition goes in the thread).
    """

    SEEN = {"by_expert": "seen_by_expert", "other_specialist": "seen_by_other_specialist",
            "emergency": "seen_in_emergency", "hospitalised": "hospitalised"}  # form choice -> field
    SEEN_CHOICES = (("by_expert", _("Oui, par l'expert")), ("other_specialist", _("Oui, par un autre spécialiste")),
                    ("emergency", _("Aux urgences")), ("hospitalised", _("Hospitalisé")), (NONE, _("Non")))

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="follow_up")
    requested_at = models.DateTimeField(_("demandé le"), default=timezone.now)
    answered_at = models.DateTimeField(_("répondu le"), null=True, blank=True)
    answered_by = models.ForeignKey(Professional, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    advice_followed = models.CharField(_("conseils suivis"), max_length=8, choices=Answer.choices, blank=True)
    seen_by_expert = models.BooleanField(_("vu par l'expert"), default=False)
    seen_by_other_specialist = models.BooleanField(_("vu par un autre spécialiste"), default=False)
    seen_in_emergency = models.BooleanField(_("vu aux urgences"), default=False)
    hospitalised = models.BooleanField(_("hospitalisé"), default=False)
    outcome = models.TextField(_("évolution"), blank=True)

    class Meta:
        verbose_name = _("suivi après clôture")
        verbose_name_plural = _("suivis après clôture")
        constraints = [
            models.CheckConstraint(
                name="follow_up_answer_complete",
                condition=Q(answered_at__isnull=True) | (~Q(advice_followed="") & ~Q(outcome="")
                                                         & Q(answered_by__isnull=False)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} follow-up"

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None

    @property
    def seen_labels(self) -> list[str]:
        return _labels(self, self.SEEN, self.SEEN_CHOICES)


def _labels(row, flags: dict, choices) -> list[str]:
    """The labels of the boxes ticked, or the label of the exclusive "none" box."""
    labels = dict(choices)
    ticked = [str(labels[choice]) for choice, name in flags.items() if getattr(row, name)]
    return ticked or [str(labels[NONE])]
