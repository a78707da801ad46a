from django import forms
from django.utils.translation import gettext_lazy

from teleexpertise.api.models import PERSONAL_SCOPES


class PersonalTokenForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Nom du jeton (le logiciel qui l'utilisera)"), max_length=120)
    scopes = forms.MultipleChoiceField(label=gettext_lazy("Portées"), widget=forms.CheckboxSelectMultiple,
                                       choices=list(PERSONAL_SCOPES.items()))
    days = forms.IntegerField(label=gettext_lazy("Validité en jours (vide : jusqu'à révocation)"), required=False,
                              min_value=1, max_value=3650)
