"""Background work of cases: follow-ups (hourly), deadline alerts (every 5 minutes), on-call escalation (every minute).

Each job calls an idempotent service: a missed or doubled run is harmless, the next one catches up.
"""

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from teleexpertise.cases.deadlines import deadline_alerts_send
from teleexpertise.cases.oncall import oncall_escalate_due
from teleexpertise.cases.services import follow_ups_request_due

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="17"))
def request_due_follow_ups() -> int:
    """Hourly; a missed or doubled run is harmless (the service is idempotent and catches up on the next)."""
    count = follow_ups_request_due()
    if count:
        logger.info("follow-ups requested", extra={"count": count})
    return count


@db_periodic_task(crontab(minute="*/5"))
def send_deadline_alerts() -> int:
    """Reminders 48 h and 24 h before the deadline, overdue cases, pooled cases nobody claimed."""
    count = deadline_alerts_send()
    if count:
        logger.info("deadline alerts sent", extra={"count": count})
    return count


@db_periodic_task(crontab())
def escalate_oncall() -> int:
    """Every minute: the acknowledgement window is minutes long (ONCALL_ACK_MINUTES)."""
    count = oncall_escalate_due()
    if count:
        logger.info("on-call requests escalated", extra={"count": count})
    return count
