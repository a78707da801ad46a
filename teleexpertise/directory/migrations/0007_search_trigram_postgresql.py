"""Trigram index on the professionals' name key, on PostgreSQL only (directory search: a name fragment anywhere).

SQLite has no trigram index: there the search is a prefix range on the plain B-tree index of 0005. The index is
not declared on the model (it would be created on SQLite too), so these operations leave the migration state
alone and only act on a PostgreSQL database.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations
from django.db.migrations.operations.base import Operation

INDEX = "directory_professional_search_name_trgm"


class OnPostgreSQL(Operation):
    """Run the wrapped database operations on PostgreSQL only; no change to the migration state."""

    reversible = True

    def __init__(self, *operations):
        self.operations = operations

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            for operation in self.operations:
                operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            for operation in reversed(self.operations):
                operation.database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return "PostgreSQL only: " + "; ".join(op.describe() for op in self.operations)


class Migration(migrations.Migration):
    dependencies = [("directory", "0006_directory_import")]

    operations = [
        OnPostgreSQL(
            TrigramExtension(),
            migrations.RunSQL(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON directory_professional USING gin (search_name gin_trgm_ops)",
                f"DROP INDEX IF EXISTS {INDEX}",
            ),
        ),
    ]
