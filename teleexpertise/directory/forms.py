"""Forms of the directory pages: they parse input; directory.services decides and writes."""

from django import forms
from django.utils.translation import gettext_lazy as _

from teleexpertise.directory.models import OnCallShift, Professional


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
