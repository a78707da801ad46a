from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from teleexpertise.api.models import SCOPES
from teleexpertise.api.services import api_client_create
from teleexpertise.directory.models import Organisation


class Command(BaseCommand):
    help = "Create an organisation API client (OAuth2 client credentials); prints its secret once."

    def add_arguments(self, parser):
        parser.add_argument("--finess", required=True, help="FINESS number of the organisation")
        parser.add_argument("--name", required=True, help="the software, e.g. 'DPI du CHU'")
        parser.add_argument("--scopes", default=" ".join(SCOPES), help="space-separated scopes")

    def handle(self, *args, finess, name, scopes, **options):
        organisation = Organisation.objects.filter(finess=finess).first()
        if organisation is None:
            raise CommandError(f"No organisation with FINESS {finess}.")
        try:
            client, secret = api_client_create(organisation=organisation, name=name, scopes=scopes.split())
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"client_id={client.client_id}\nclient_secret={secret}\nscopes={' '.join(client.scopes)}\n"
                          "The secret is shown once: only its hash is kept.")
