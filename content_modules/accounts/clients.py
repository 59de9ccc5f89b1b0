"""Who the client is: its IP address, trusting ``X-Forwarded-For`` only from our proxies."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or the ``NUM_PROXIES``-th address from the right.

    Each proxy appends the address it was called from to ``X-Forwarded-For``,
    so with N proxies of ours in front, the N-th entry from the right is the
    one the first of them saw; anything left of it is whatever the client
    wrote. With ``NUM_PROXIES=0`` (the default) the header is ignored, so a
    client cannot pick a new address per request to dodge a throttle or lock.
    """
    if request is None:
        return None
    meta = request.META
    remote = meta.get("REMOTE_ADDR") or None
    proxies = settings.NUM_PROXIES
    if proxies > 0:
        forwarded = [a.strip() for a in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if forwarded:
            candidate = forwarded[-min(proxies, len(forwarded))]
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return remote
    return remote
