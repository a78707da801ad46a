"""Forms of the directory pages (search, import upload, on-call rota): they parse input; directory.services
decides and writes."""

from django import forms
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _

from teleexpertise.directory.models import Network, OnCallShift, Profession, Professional, Specialty


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.display_name}, {obj.role_label}"


class OnCallShiftForm(forms.Form):
    weekday = forms.TypedChoiceField(label=_("Jour"), choices=OnCallShift.Weekday.choices, coerce=int)
    starts_at = forms.TimeField(label=_("Début"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    ends_at = forms.TimeField(label=_("Fin"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                              help_text=_("Une fin avant le début se termine le lendemain (garde de nuit)."))
    expert = MemberChoiceField(label=_("Expert d'astreinte"), queryset=None)
    backup = MemberChoiceField(label=_("Suppléant"), queryset=None, required=False)

    def __init__(self, *args, network, **kwargs):
        super().__init__(*args, **kwargs)
        members = (Professional.objects.filter(memberships__network=network, profession__may_be_expert=True)
                   .select_related("profession", "specialty"))
        self.fields["expert"].queryset = members
        self.fields["backup"].queryset = members


class DirectorySearchForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Nom"), required=False, max_length=100)
    profession = forms.ModelChoiceField(label=gettext_lazy("Profession"), required=False,
                                        queryset=Profession.objects.all())
    specialty = forms.ModelChoiceField(label=gettext_lazy("Spécialité"), required=False,
                                       queryset=Specialty.objects.all())
    city = forms.CharField(label=gettext_lazy("Ville"), required=False, max_length=120)
    department = forms.RegexField(label=gettext_lazy("Département"), required=False, regex=r"^\s*(\d{2,3}|2[ABab])\s*$",
                                  error_messages={"invalid": gettext_lazy("Un numéro de département : 69, 2A, 974.")})
    network = forms.ModelChoiceField(label=gettext_lazy("Réseau"), required=False,
                                     queryset=Network.objects.filter(is_active=True))
    experts_only = forms.BooleanField(label=gettext_lazy("Seulement les professionnels pouvant donner un avis"),
                                      required=False)

    def criteria(self) -> dict:
        d = self.cleaned_data
        return {"q": d["q"], "profession": d["profession"].pk if d["profession"] else "",
                "specialty": d["specialty"].pk if d["specialty"] else "", "city": d["city"],
                "department": d["department"].strip(), "network": d["network"], "experts_only": d["experts_only"]}

    @property
    def is_empty(self) -> bool:
        return not any(self.cleaned_data.values())


class DirectoryUploadForm(forms.Form):
    extract = forms.FileField(label=gettext_lazy("Extraction « Personne activité » de l'annuaire (fichier .txt)"))
