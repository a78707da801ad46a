from django import forms
from django.utils.translation import gettext_lazy as _

from teleexpertise.reports.models import ReportVersion


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
