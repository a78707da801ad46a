from django.core.management.base import BaseCommand, CommandError

from teleexpertise.api.models import ApiClient
from teleexpertise.api.services import api_client_revoke


class Command(BaseCommand):
    help = "Revoke an organisation API client and every access token it holds."

    def add_arguments(self, parser):
        parser.add_argument("client_id")

    def handle(self, *args, client_id, **options):
        try:
            client = api_client_revoke(client_id=client_id)
        except ApiClient.DoesNotExist:
            raise CommandError(f"No client {client_id}.") from None
        self.stdout.write(f"Revoked {client}.")
