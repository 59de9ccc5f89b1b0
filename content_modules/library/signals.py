"""Signals the library sends after commit, for other apps to react to.

``version_content_changed`` fires once the transaction that created or edited
a version has committed (the affinity app embeds the new text).
``delivery_changed`` fires whenever the set of approved versions may have
changed (approval, supersession, withdrawal, expiry) so caches refresh.
"""

from django.db import transaction
from django.dispatch import Signal

version_content_changed = Signal()  # kwargs: version_id
delivery_changed = Signal()  # kwargs: module_id


def announce_version_content(version) -> None:
    """Send version_content_changed after the current transaction commits."""
    version_id = version.pk
    transaction.on_commit(
        lambda: version_content_changed.send(sender=version.__class__, version_id=version_id)
    )


def announce_delivery_change(module_id: int) -> None:
    """Send delivery_changed after the current transaction commits."""
    transaction.on_commit(lambda: delivery_changed.send(sender=None, module_id=module_id))
