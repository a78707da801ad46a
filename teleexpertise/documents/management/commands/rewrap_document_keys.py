"""Re-wrap every document's (and report PDF's) data key under the active master key (after adding a new one).

Only the small wrapped keys change; the encrypted files stay as they are. Run it after putting the new key
first in DOCUMENT_MASTER_KEYS (or naming it in DOCUMENT_ACTIVE_KEY_ID) while keeping the old one; once it
reports nothing left under the old id, the old key can be removed.
"""

from django.core.management.base import BaseCommand
from django.db.models import Count

from teleexpertise.documents.models import Document
from teleexpertise.documents.services import document_rewrap
from teleexpertise.reports.services import report_pdf_rewrap


class Command(BaseCommand):
    help = "Re-wrap all document keys under the active master key."

    def add_arguments(self, parser):
        parser.add_argument("--key-id", help="the master key id to wrap under (default: the active one)")

    def handle(self, *args, key_id=None, **options):
        changed = 0
        documents = Document.objects.select_related("case").order_by("uploaded_at")
        for document in documents.iterator(chunk_size=500):
            changed += document_rewrap(document=document, to_key_id=key_id)
        by_key = Document.objects.values("key_id").annotate(n=Count("pk")).order_by("key_id")
        self.stdout.write(f"{changed} document key(s) re-wrapped.")
        for row in by_key:
            self.stdout.write(f"  key {row['key_id']}: {row['n']} document(s)")
        changed, by_key = report_pdf_rewrap(to_key_id=key_id)
        self.stdout.write(f"{changed} report PDF key(s) re-wrapped.")
        for row in by_key:
            self.stdout.write(f"  key {row['key_id']}: {row['n']} report PDF(s)")
