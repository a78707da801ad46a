"""Readable names of audit actions, for the case timeline."""

from django.utils.translation import gettext_lazy as _

ACTION_LABELS = {
    "case.create": _("Brouillon de demande créé"),
    "case.edit_draft": _("Brouillon modifié"),
    "case.submit": _("Demande envoyée"),
    "case.claim": _("Prise en charge depuis la file partagée"),
    "case.assign": _("Attribuée par le régulateur"),
    "case.accept": _("Acceptée, délai de réponse fixé"),
    "case.request_information": _("Compléments demandés"),
    "case.provide_information": _("Compléments fournis"),
    "case.decline": _("Déclarée non réalisable"),
    "case.transfer": _("Transférée"),
    "case.answer": _("Répondue"),
    "case.close": _("Clôturée"),
    "case.withdraw": _("Retirée"),
    "closing_survey.record": _("Questionnaire de clôture"),
    "follow_up.request": _("Suivi demandé au requérant"),
    "follow_up.answer": _("Suivi renseigné par le requérant"),
    "consent.record": _("Consentement enregistré"),
    "patient.create": _("Patient enregistré"),
    "patient.update": _("Identité du patient complétée"),
    "message.create": _("Message"),
    "report.save_draft": _("Brouillon du compte-rendu enregistré"),
    "report.sign": _("Compte-rendu signé"),
    "report.pdf_download": _("PDF du compte-rendu téléchargé"),
    "report.pdf_retry": _("Génération du PDF relancée"),
    "report.pdf_integrity_error": _("PDF du compte-rendu illisible (contrôle d'intégrité)"),
    "document.add": _("Document ajouté"),
    "document.refused": _("Document refusé"),
    "document.integrity_error": _("Document illisible (contrôle d'intégrité)"),
    "document.rewrap": _("Clé du document renouvelée"),
    "billing.create": _("Acte de téléexpertise à facturer créé"),
    "billing.status": _("Statut de facturation d'un acte modifié"),
    "billing.list": _("Liste des actes consultée"),
    "billing.export": _("Actes exportés pour la facturation"),
    "billing.overview": _("Synthèse des actes consultée"),
    "billing.activity_view": _("Indicateur d'activité à distance consulté"),
    "billing.activity_declare": _("Activité annuelle déclarée"),
}


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))
