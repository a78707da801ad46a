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
    "consent.record": _("Consentement enregistré"),
    "patient.create": _("Patient enregistré"),
    "patient.update": _("Identité du patient complétée"),
    "message.create": _("Message"),
    "report.save_draft": _("Brouillon du compte-rendu enregistré"),
    "report.sign": _("Compte-rendu signé"),
    "report.pdf_download": _("PDF du compte-rendu téléchargé"),
    "report.pdf_retry": _("Génération du PDF relancée"),
    "report.pdf_integrity_error": _("PDF du compte-rendu illisible (contrôle d'intégrité)"),
    "patient_link.create": _("Accès au compte-rendu envoyé au patient"),
    "patient_link.send_failed": _("Envoi de l'accès au patient impossible"),
    "patient_link.revoke": _("Accès du patient révoqué"),
    "patient_link.open": _("Lien patient ouvert (date de naissance demandée)"),
    "patient_link.verify": _("Date de naissance vérifiée (lien patient)"),
    "patient_link.verify_failed": _("Date de naissance erronée (lien patient)"),
    "patient_link.lock": _("Lien patient verrouillé après trop d'essais"),
    "patient_link.refused": _("Lien patient refusé (expiré, révoqué ou verrouillé)"),
    "patient_link.unknown": _("Lien patient inconnu"),
    "patient_link.report_view": _("Compte-rendu consulté par le patient"),
    "patient_link.pdf_download": _("PDF du compte-rendu téléchargé par le patient"),
    "document.add": _("Document ajouté"),
    "document.refused": _("Document refusé"),
    "document.integrity_error": _("Document illisible (contrôle d'intégrité)"),
    "document.rewrap": _("Clé du document renouvelée"),
}


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))
