"""Daily rollups of engagement events, kept exact by database triggers (migration 0002).

Every insert, delete or relevant update of ``affinity_engagementevent`` changes
these counters in the same transaction, whatever code path wrote the event
(ingestion's COPY-and-insert, the ORM, the admin, raw SQL, an HCP's erasure).
A late event lands in its own day's row, so every answer read from here equals
a direct count of the stored events. Only ``delivered``, ``opened`` and
``clicked`` events are counted.
"""

from __future__ import annotations

from django.db import models

COUNTED_TYPES = ("delivered", "opened", "clicked")


class ContentDaily(models.Model):
    """Deliveries, opens and clicks of one module version on one channel on one UTC day,
    from the HCPs now in one microsegment.

    The microsegment is the HCP's *current* one, as in ``SegmentDaily``: a relabelling
    moves its counts. Carrying it here answers a microsegment filter, and ``by=segment``
    with a brand or market filter, from this table instead of the events.
    """

    day = models.DateField()
    # No database constraint: rows are written by triggers, and a module's rows go
    # when its events do (the event triggers remove rows that fall to zero).
    module = models.ForeignKey(
        "library.Module", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    # The event's version id, 0 for an event without one (a unique key cannot hold NULL
    # as one value on both vendors).
    version_key = models.IntegerField()
    channel = models.CharField(max_length=32)
    microsegment = models.CharField(max_length=16, blank=True, default="")
    deliveries = models.BigIntegerField(default=0)
    opens = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "module", "version_key", "channel", "microsegment"],
                name="contentdaily_segment_key",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.day} module {self.module_id} v{self.version_key} {self.channel}"
            f" {self.microsegment or '(none)'}"
        )


class SegmentDaily(models.Model):
    """Deliveries, opens and clicks of HCPs now in one microsegment, per channel and UTC day.

    Counted by the HCP's *current* microsegment: a trigger on ``affinity_hcp`` moves
    an HCP's counts from the old segment to the new one whenever a fit relabels it,
    so this always equals events joined to HCPs, without joining 2,000,000 rows.
    """

    day = models.DateField()
    microsegment = models.CharField(max_length=16)
    channel = models.CharField(max_length=32)
    deliveries = models.BigIntegerField(default=0)
    opens = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "microsegment", "channel"], name="segmentdaily_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.microsegment or '(none)'} {self.channel}"
