"""Signal receivers of the affinity app, connected in ``AffinityConfig.ready``."""

from __future__ import annotations

from django.dispatch import receiver

from content_modules.library.signals import version_content_changed

from .tasks import enqueue_embedding


@receiver(version_content_changed, dispatch_uid="affinity.embed_version_on_change")
def embed_changed_version(sender, version_id: int, **kwargs) -> None:
    """A version's text was written (the signal fires after commit): embed it in the background."""
    enqueue_embedding(version_id)
