"""Professionals, their professions and specialties, organisations and expert networks (pools)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from teleexpertise.directory.identifiers import national_id, validate_adeli, validate_finess, validate_rpps


class Profession(models.Model):
    """A TRE_G15 profession ("10" doctor, "50" midwife, "60" nurse...), loaded by a data migration."""

    code = models.CharField(_("code TRE_G15"), max_length=8, primary_key=True)
    label = models.CharField(_("libellé"), max_length=200)
    may_be_expert = models.BooleanField(
        _("peut être requis"), default=False,
        help_text=_("Seuls les médecins et les sages-femmes peuvent donner un avis de téléexpertise."),
    )

    class Meta:
        verbose_name = _("profession")
        verbose_name_plural = _("professions")
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class Specialty(models.Model):
    """A TRE_R38 ordinal specialty of doctors ("SM15" dermatology...)."""

    code = models.CharField(_("code TRE_R38"), max_length=16, primary_key=True)
    label = models.CharField(_("libellé"), max_length=200)

    class Meta:
        verbose_name = _("spécialité")
        verbose_name_plural = _("spécialités")
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class Organisation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("raison sociale"), max_length=255)
    finess = models.CharField(_("FINESS"), max_length=9, unique=True, null=True, blank=True,
                              validators=[validate_finess])
    city = models.CharField(_("ville"), max_length=120, blank=True)
    postcode = models.CharField(_("code postal"), max_length=5, blank=True)
    # Billing: two professionals of one group practice working at the same site may not bill each other
    # a tele-expertise (Assurance Maladie rule); an establishment or a network is not a group practice.
    # The directory's "identifiant technique de la structure" of an organisation that has no FINESS (a
    # private practice): what a re-import finds it by.
    structure_id = models.CharField(_("identifiant de structure (annuaire)"), max_length=40, unique=True, null=True,
                                    blank=True, editable=False)
    is_group_practice = models.BooleanField(
        _("cabinet de groupe"), default=False,
        help_text=_("Cabinet de groupe, maison ou centre de santé : une téléexpertise entre deux professionnels "
                    "de ce cabinet exerçant sur le même site n'est pas facturable."),
    )

    class Meta:
        verbose_name = _("structure")
        verbose_name_plural = _("structures")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.city})" if self.city else self.name


class Site(models.Model):
    """A place where an organisation's professionals work (one group practice may have several sites)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="sites",
                                     verbose_name=_("structure"))
    name = models.CharField(_("nom du site"), max_length=200)
    address = models.CharField(_("adresse"), max_length=255, blank=True)
    city = models.CharField(_("ville"), max_length=120, blank=True)
    postcode = models.CharField(_("code postal"), max_length=5, blank=True)
    department = models.CharField(_("département"), max_length=3, blank=True)
    finess = models.CharField(_("FINESS du site"), max_length=9, blank=True)
    # The directory's "identifiant technique de la structure": one site per structure of the national directory.
    structure_id = models.CharField(_("identifiant de structure (annuaire)"), max_length=40, unique=True, null=True,
                                    blank=True, editable=False)

    class Meta:
        verbose_name = _("site d'exercice")
        verbose_name_plural = _("sites d'exercice")
        ordering = ["organisation", "name"]

    def __str__(self) -> str:
        return f"{self.organisation.name} — {self.name}"


def display_name(title: str, first_name: str, last_name: str) -> str:
    """"Dr Alice BERNARD": how a professional is named everywhere (also for rows read as values, not models)."""
    prefix = f"{title} " if title else ""
    return f"{prefix}{first_name} {last_name.upper()}"


class Professional(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="professional", verbose_name=_("compte"))
    rpps = models.CharField(_("RPPS"), max_length=11, unique=True, null=True, blank=True, validators=[validate_rpps])
    adeli = models.CharField(_("ADELI"), max_length=9, unique=True, null=True, blank=True,
                             validators=[validate_adeli])
    title = models.CharField(_("civilité d'exercice"), max_length=10, blank=True)
    first_name = models.CharField(_("prénom"), max_length=150)
    last_name = models.CharField(_("nom"), max_length=150)
    profession = models.ForeignKey(Profession, on_delete=models.PROTECT, verbose_name=_("profession"))
    specialty = models.ForeignKey(Specialty, on_delete=models.PROTECT, null=True, blank=True,
                                  verbose_name=_("spécialité"))
    advanced_practice = models.BooleanField(_("infirmier en pratique avancée (IPA)"), default=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="professionals", verbose_name=_("structure"))
    site = models.ForeignKey(Site, on_delete=models.SET_NULL, null=True, blank=True, related_name="professionals",
                             verbose_name=_("site d'exercice"),
                             help_text=_("Vide : la structure n'a qu'un site."))
    mssante_email = models.EmailField(_("adresse MSSanté"), blank=True)
    phone = models.CharField(_("téléphone"), max_length=20, blank=True)
    city = models.CharField(_("ville d'exercice"), max_length=120, blank=True)
    department = models.CharField(_("département d'exercice"), max_length=3, blank=True, db_index=True)
    # Search keys (unaccented capitals, see directory.search.search_key), written by save() and by the import.
    search_name = models.CharField(max_length=301, blank=True, db_index=True, editable=False)
    city_key = models.CharField(max_length=120, blank=True, db_index=True, editable=False)
    # Expert profile: who may ask, how many open cases at most (empty: everyone, no limit).
    requester_professions = models.ManyToManyField(
        Profession, blank=True, related_name="+", verbose_name=_("professions pouvant le solliciter"),
        help_text=_("Vide : toute profession peut adresser une demande à cet expert."))
    max_open_cases = models.PositiveIntegerField(
        _("nombre maximal de demandes en cours"), null=True, blank=True,
        help_text=_("Vide : pas de limite. Au-delà, les nouvelles demandes sont refusées à l'envoi."))

    class Meta:
        verbose_name = _("professionnel de santé")
        verbose_name_plural = _("professionnels de santé")
        ordering = ["last_name", "first_name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rpps__isnull=False) | Q(adeli__isnull=False), name="professional_has_national_id"
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    def save(self, *args, **kwargs):
        from teleexpertise.directory.search import search_key

        self.search_name = search_key(f"{self.last_name} {self.first_name}")
        self.city_key = search_key(self.city)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "search_name", "city_key"}
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        return display_name(self.title, self.first_name, self.last_name)

    @property
    def may_be_expert(self) -> bool:
        return self.profession.may_be_expert

    @property
    def national_id(self) -> str:
        return national_id(rpps=self.rpps or "", adeli=self.adeli or "")

    @property
    def role_label(self) -> str:
        label = self.specialty.label if self.specialty_id else self.profession.label
        return f"{label} (IPA)" if self.advanced_practice else label


class PracticeActivity(models.Model):
    """One activity of a professional at a site, as the national directory lists it (one line of its extract)."""

    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="activities")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="activities")
    mode = models.CharField(_("mode d'exercice"), max_length=2, blank=True,
                            help_text=_("L : libéral, S : salarié, B : bénévole."))

    class Meta:
        verbose_name = _("activité")
        verbose_name_plural = _("activités")
        constraints = [models.UniqueConstraint(fields=["professional", "site"], name="one_activity_per_site")]

    def __str__(self) -> str:
        return f"{self.professional} — {self.site}"


class DirectoryImport(models.Model):
    """One run of the national directory import: its progress and its counts; rejected lines are its rows."""

    class Status(models.TextChoices):
        PENDING = "pending", _("en attente")
        RUNNING = "running", _("en cours")
        DONE = "done", _("terminé")
        FAILED = "failed", _("échec")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    source_name = models.CharField(_("fichier"), max_length=255)
    path = models.CharField(max_length=500, editable=False)  # where the uploaded file is spooled
    size = models.BigIntegerField(_("taille"), default=0)
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.PENDING)
    bytes_read = models.BigIntegerField(default=0)
    lines = models.PositiveIntegerField(_("lignes lues"), default=0)
    created = models.PositiveIntegerField(_("professionnels créés"), default=0)
    updated = models.PositiveIntegerField(_("professionnels mis à jour"), default=0)
    unchanged = models.PositiveIntegerField(_("professionnels inchangés"), default=0)
    rejected = models.PositiveIntegerField(_("lignes rejetées"), default=0)
    error = models.TextField(_("erreur"), blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import de l'annuaire")
        verbose_name_plural = _("imports de l'annuaire")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.source_name} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(99, int(100 * self.bytes_read / self.size)) if self.size else 0


class DirectoryImportRejection(models.Model):
    run = models.ForeignKey(DirectoryImport, on_delete=models.CASCADE, related_name="rejections")
    line_number = models.PositiveIntegerField(_("ligne"))
    reason = models.CharField(_("motif"), max_length=300)
    content = models.CharField(_("début de la ligne"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("ligne rejetée")
        verbose_name_plural = _("lignes rejetées")
        ordering = ["run", "line_number"]
        indexes = [models.Index(fields=["run", "line_number"])]

    def __str__(self) -> str:
        return f"{self.line_number}: {self.reason}"


class Network(models.Model):
    """A pool of experts for a specialty: a hospital department, a specialised care team (ESS)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("nom"), max_length=200)
    specialty = models.ForeignKey(Specialty, on_delete=models.PROTECT, verbose_name=_("spécialité"))
    organisation = models.ForeignKey(Organisation, on_delete=models.SET_NULL, null=True, blank=True,
                                     verbose_name=_("structure"))
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("actif"), default=True)
    members = models.ManyToManyField(Professional, through="NetworkMembership", related_name="networks")
    requester_professions = models.ManyToManyField(
        Profession, blank=True, related_name="+", verbose_name=_("professions pouvant le solliciter"),
        help_text=_("Vide : toute profession peut adresser une demande à ce réseau."))
    max_open_cases = models.PositiveIntegerField(
        _("nombre maximal de demandes en cours"), null=True, blank=True,
        help_text=_("Vide : pas de limite. Au-delà, les nouvelles demandes sont refusées à l'envoi."))

    class Meta:
        verbose_name = _("réseau")
        verbose_name_plural = _("réseaux")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} — {self.organisation.name}" if self.organisation_id else self.name


class NetworkMembership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", _("membre")
        DISPATCHER = "dispatcher", _("régulateur")

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="memberships")
    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("rôle"), max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        verbose_name = _("membre d'un réseau")
        verbose_name_plural = _("membres des réseaux")
        constraints = [models.UniqueConstraint(fields=["network", "professional"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.professional} — {self.network} ({self.get_role_display()})"


class Absence(models.Model):
    """An expert's absence (dates included): new requests addressed to them go to the substitute, or else to the
    pool of their network."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="absences",
                                     verbose_name=_("expert absent"))
    starts_on = models.DateField(_("du"))
    ends_on = models.DateField(_("au (inclus)"))
    substitute = models.ForeignKey(Professional, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="substitutions", verbose_name=_("remplaçant"),
                                   help_text=_("Vide : les demandes vont à la file partagée du réseau de l'expert."))
    network = models.ForeignKey(Network, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                verbose_name=_("réseau de repli"),
                                help_text=_("Vide : le premier réseau actif dont l'expert est membre."))

    class Meta:
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        ordering = ["professional", "starts_on"]
        indexes = [models.Index(fields=["professional", "ends_on"], name="absence_current")]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gte=models.F("starts_on")), name="absence_dates_ordered"),
            models.CheckConstraint(condition=~Q(substitute=models.F("professional")), name="absence_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.professional} : {self.starts_on:%d/%m/%Y} → {self.ends_on:%d/%m/%Y}"


class OnCallShift(models.Model):
    """One slot of a network's weekly on-call rota (permanence): who answers synchronous requests, and a backup.

    Times are Europe/Paris wall-clock times; an end before the start runs past midnight into the next day.
    """

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("lundi")
        TUESDAY = 1, _("mardi")
        WEDNESDAY = 2, _("mercredi")
        THURSDAY = 3, _("jeudi")
        FRIDAY = 4, _("vendredi")
        SATURDAY = 5, _("samedi")
        SUNDAY = 6, _("dimanche")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="oncall_shifts",
                                verbose_name=_("réseau"))
    weekday = models.PositiveSmallIntegerField(_("jour"), choices=Weekday.choices)
    starts_at = models.TimeField(_("début"))
    ends_at = models.TimeField(_("fin"))
    expert = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="oncall_shifts",
                               verbose_name=_("expert d'astreinte"))
    backup = models.ForeignKey(Professional, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                               verbose_name=_("suppléant"))

    class Meta:
        verbose_name = _("créneau d'astreinte")
        verbose_name_plural = _("créneaux d'astreinte")
        ordering = ["network", "weekday", "starts_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(starts_at=models.F("ends_at")), name="oncall_shift_not_empty"),
            models.CheckConstraint(condition=~Q(expert=models.F("backup")), name="oncall_backup_is_another"),
        ]

    def __str__(self) -> str:
        return f"{self.network} {self.get_weekday_display()} {self.starts_at:%H:%M}-{self.ends_at:%H:%M}"

    def covers(self, weekday: int, at) -> bool:
        """Whether this slot is running on `weekday` at wall-clock time `at`."""
        if self.starts_at < self.ends_at:
            return weekday == self.weekday and self.starts_at <= at < self.ends_at
        # Overnight: from the start to midnight on its day, then from midnight to the end on the next day.
        return ((weekday == self.weekday and at >= self.starts_at)
                or (weekday == (self.weekday + 1) % 7 and at < self.ends_at))
