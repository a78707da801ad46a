"""Background work of the directory: the national directory import uploaded by an administrator."""

from huey.contrib.djhuey import db_task

from teleexpertise.directory import services


@db_task(retries=2, retry_delay=60)
def run_directory_import(run_id: str) -> None:
    """Idempotent: a finished run is not run again; a retried one starts over (the import itself is idempotent)."""
    services.directory_import_run(run_id=run_id)
