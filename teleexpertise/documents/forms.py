from django import forms
from django.utils.translation import gettext_lazy as _

from teleexpertise.documents.models import Document


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type de document"), choices=Document.Kind.choices, initial=Document.Kind.PHOTO)
    files = MultipleFileField(label=_("Fichiers (photos, PDF, DICOM, vidéos)"))
    attached_to = forms.ChoiceField(choices=Document.AttachedTo.choices, initial=Document.AttachedTo.REQUEST,
                                    widget=forms.HiddenInput)
