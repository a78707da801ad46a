"""Background work of cases: the hourly request of follow-ups (FOLLOW_UP_DELAY_DAYS after closing)."""

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from teleexpertise.cases.services import follow_ups_request_due

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="17"))
def request_due_follow_ups() -> int:
    """Hourly; a missed or doubled run is harmless (the service is idempotent and catches up on the next)."""
    count = follow_ups_request_due()
    if count:
        logger.info("follow-ups requested", extra={"count": count})
    return count
