"""Reading the audit trail: the filters people ask for (who, what, when) as one queryset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import QuerySet

from .models import AuditEntry


@dataclass(frozen=True)
class AuditFilters:
    """Narrow the trail: ``user`` (a username), ``action``, whole UTC days ``since``-``until``."""

    user: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None

    def query(self) -> dict[str, str]:
        """The filters as query parameters, for links that keep them (pages, the CSV)."""
        values = {
            "user": self.user,
            "action": self.action,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in values.items() if v}


def audit_trail(
    *, module_id: int | None = None, filters: AuditFilters | None = None
) -> QuerySet[AuditEntry]:
    """Entries in chain order (oldest first), of one module or all, narrowed by ``filters``."""
    qs = AuditEntry.objects.order_by("seq")
    if module_id is not None:
        qs = qs.filter(module_id=module_id)
    filters = filters or AuditFilters()
    if filters.user:
        qs = qs.filter(actor__username=filters.user)
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.since:
        qs = qs.filter(occurred_at__gte=datetime.combine(filters.since, time.min, tzinfo=UTC))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time.min, tzinfo=UTC)
        qs = qs.filter(occurred_at__lt=end)
    return qs
