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


class UploadFieldsForm(forms.Form):
    """What comes with a file: alone in the query string when the file is the whole request body."""

    kind = forms.ChoiceField(label=_("Type de document"), choices=Document.Kind.choices, initial=Document.Kind.PHOTO)
    attached_to = forms.ChoiceField(choices=Document.AttachedTo.choices, initial=Document.AttachedTo.REQUEST,
                                    widget=forms.HiddenInput)


class UploadForm(UploadFieldsForm):
    files = MultipleFileField(label=_("Fichiers (photos, PDF, DICOM, vidéos)"))
