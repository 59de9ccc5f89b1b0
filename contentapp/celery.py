"""The Celery app, and the one way request paths send it work.

Tasks run eagerly in-process when no REDIS_URL is set.
"""

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")

app = Celery("contentapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def enqueue(task, *, args: tuple = (), kwargs: dict | None = None, task_id: str | None = None):
    """Send ``task`` from a request path, bounded; answer whether the broker took it.

    Every request-path enqueue goes through here, never ``.delay``/``.apply_async``:
    with Redis down, Celery's defaults made one request wait 19 s and then fail
    (the broker's connect retries for ``broker_connection_timeout``, then the
    result backend's 20 one-second reconnects before a RuntimeError). Here the
    message goes over a connection of its own with one connect attempt and
    socket timeouts of ``BROKER_ENQUEUE_TIMEOUT_SECONDS``, is published once
    (``retry=False``) and subscribes to no result (nothing reads them). A broker
    that does not take it is logged and answered False: the caller's outbox (a
    row that a periodic sweeper finds) carries the work instead.
    """
    from django.conf import settings

    options = {
        "args": args,
        "kwargs": kwargs or {},
        "task_id": task_id,
        "retry": False,
        "ignore_result": True,
    }
    try:
        if app.conf.task_always_eager:
            task.apply_async(**options)
            return True
        timeout = settings.BROKER_ENQUEUE_TIMEOUT_SECONDS
        transport_options = {
            **(app.conf.broker_transport_options or {}),
            "max_retries": 0,  # one connect attempt
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,  # a frozen Redis that accepted the connection
        }
        with app.connection_for_write(
            connect_timeout=timeout, transport_options=transport_options
        ) as connection:
            task.apply_async(connection=connection, **options)
    except Exception as exc:  # noqa: BLE001 - any failure to send: the outbox carries it
        logger.warning(
            "could not queue %s (%s); the sweeper will run it: %r", task.name, task_id or args, exc
        )
        return False
    return True
