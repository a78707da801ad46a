from datetime import date

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from teleexpertise.reports.models import PatientAccessLink, ReportVersion


class ReportForm(forms.ModelForm):
    class Meta:
        model = ReportVersion
        fields = ["act_at", "answer", "conclusion", "treatments", "prescription_justification", "exams",
                  "orientation", "orientation_detail", "consultation_at", "hospitalisation", "technical_incidents",
                  "amendment_reason"]
        widgets = {
            "act_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "consultation_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "answer": forms.Textarea(attrs={"rows": 6}),
            "conclusion": forms.Textarea(attrs={"rows": 3}),
            "treatments": forms.Textarea(attrs={"rows": 3}),
            "prescription_justification": forms.Textarea(attrs={"rows": 2}),
            "exams": forms.Textarea(attrs={"rows": 3}),
            "orientation_detail": forms.Textarea(attrs={"rows": 2}),
            "technical_incidents": forms.Textarea(attrs={"rows": 2, "placeholder": _("Aucun")}),
            "amendment_reason": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, amending: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # A draft may be saved half-written; completeness is checked at signature (report_validate).
        for name in ("answer", "conclusion"):
            self.fields[name].required = False
        if not amending:
            del self.fields["amendment_reason"]


class PatientLinkForm(forms.Form):
    """The requester gives the patient access to the report: the channel and the address or mobile number.

    The recipient is checked by the service (patient_access.normalise_recipient), the one place that decides.
    """

    channel = forms.ChoiceField(label=_("Envoyer le lien par"), widget=forms.RadioSelect)
    recipient = forms.CharField(
        label=_("Adresse électronique ou numéro de mobile du patient"), max_length=254,
        help_text=_("Mobile français : 06 ou 07. Le message ne contient aucune donnée médicale."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def __init__(self, *args, channels=("email", "sms"), **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(PatientAccessLink.Channel.choices)
        self.fields["channel"].choices = [(c, labels[c]) for c in channels]
        self.fields["channel"].initial = channels[0]


class BirthDateForm(forms.Form):
    """The patient's second factor: day, month and year in three fields (what a birth date is remembered as)."""

    day = forms.CharField(label=_("Jour"), max_length=2, widget=forms.TextInput(attrs={
        "inputmode": "numeric", "autocomplete": "bday-day", "size": 2, "pattern": "[0-9]*"}))
    month = forms.CharField(label=_("Mois"), max_length=2, widget=forms.TextInput(attrs={
        "inputmode": "numeric", "autocomplete": "bday-month", "size": 2, "pattern": "[0-9]*"}))
    year = forms.CharField(label=_("Année"), max_length=4, widget=forms.TextInput(attrs={
        "inputmode": "numeric", "autocomplete": "bday-year", "size": 4, "pattern": "[0-9]*"}))

    def clean(self):
        data = super().clean()
        try:
            data["birth_date"] = date(int(data["year"]), int(data["month"]), int(data["day"]))
        except (KeyError, ValueError):
            if not self.errors:
                raise forms.ValidationError(_("Cette date n'existe pas : saisissez le jour, le mois et l'année en "
                                              "chiffres, par exemple 12 05 1984.")) from None
            return data
        if len(data["year"]) != 4 or data["birth_date"] > timezone.localdate():
            raise forms.ValidationError(_("Saisissez l'année sur quatre chiffres, par exemple 1984."))
        return data
