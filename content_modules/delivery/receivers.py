"""Signal receivers of the delivery app, connected in ``DeliveryConfig.ready``."""

from __future__ import annotations

from django.dispatch import receiver

from content_modules.library.signals import delivery_changed

from . import catalogue


@receiver(delivery_changed, dispatch_uid="delivery.bump_generation")
def bump_generation(sender, module_id: int | None = None, **kwargs) -> None:
    """Approved content changed (sent after commit): every process's catalogue is stale."""
    catalogue.bump()
