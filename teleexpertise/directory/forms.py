from django import forms
from django.utils.translation import gettext_lazy

from teleexpertise.directory.models import Network, Profession, Specialty


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
