"""Fixtures shared by the whole suite."""

import contextlib

import pytest
from django.core.cache import cache

from content_modules.accounts.roles import Role
from contentapp.celery import app as celery_app

from . import celery_support, factories


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings, tmp_path):
    """Fast password hashing, files in a temporary folder, an empty cache per test.

    Celery tasks run in-process (eager) unless a test asks for the real worker
    (``live_celery_worker`` switches the app to the broker for its duration): with
    REDIS_URL set, as in CI, a task sent to a broker that no worker reads would
    otherwise wait forever.
    """
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "audit-checkpoints")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # A stopped Redis (in the resilience tests) must not break unrelated tests.
    with contextlib.suppress(Exception):
        cache.clear()
    yield


def _flush_past_the_audit_truncate_guard() -> None:
    """Let the test database's flush TRUNCATE the audit tables, which a trigger refuses.

    A transactional test ends with a flush (one TRUNCATE of every table). Production
    refuses TRUNCATE on the audit trail (migration audit 0003); the test run, as the
    superuser, skips triggers for that one flush transaction only (SET LOCAL).
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    plain_flush = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, **kwargs):
        statements = plain_flush(self, style, tables, **kwargs)
        if statements and any(table.startswith("audit_") for table in tables):
            statements.insert(0, "SET LOCAL session_replication_role = replica;")
        return statements

    DatabaseOperations.sql_flush = sql_flush


_flush_past_the_audit_truncate_guard()


TRANSACTIONAL_FIXTURES = {"transactional_db", "live_server", "live_celery_worker"}


@pytest.fixture(autouse=True)
def _migration_data(request):
    """Put back the rows the data migrations made, for every transactional test.

    A transactional test ends with a flush that empties every table, including
    the role groups and channels the migrations created; the next transactional
    test would find them gone. Recreating them here is cheaper and more robust
    than serialized rollback (whose reload collides with the content types that
    a plain flush recreates).
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        TRANSACTIONAL_FIXTURES & set(request.fixturenames)
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        factories.restore_migration_data()


@pytest.fixture
def vocabulary(db):
    factories.ensure_vocabulary()


@pytest.fixture
def author(db):
    return factories.make_user(Role.AUTHOR, first_name="Ada", last_name="Author")


@pytest.fixture
def other_author(db):
    return factories.make_user(Role.AUTHOR, first_name="Otto", last_name="Other")


@pytest.fixture
def medical(db):
    return factories.make_user(Role.MEDICAL, first_name="Mia", last_name="Medical")


@pytest.fixture
def legal(db):
    return factories.make_user(Role.LEGAL, first_name="Leo", last_name="Legal")


@pytest.fixture
def regulatory(db):
    return factories.make_user(Role.REGULATORY, first_name="Rita", last_name="Regulatory")


@pytest.fixture
def engine(db):
    return factories.make_user(Role.ENGINE, username="engine-svc")


@pytest.fixture
def admin_user(db):
    return factories.make_user(Role.ADMIN, is_staff=True, is_superuser=True)


@pytest.fixture
def live_celery_worker(transactional_db, tmp_path):
    """A real Celery worker subprocess on Redis and the test database (tests/celery_support.py)."""
    with celery_support.live_worker(tmp_path) as worker:
        yield worker


@pytest.fixture(scope="session")
def embedding_model():
    """The real sentence-transformers model from disk, loaded once per test session."""
    from content_modules.affinity import embeddings

    return embeddings.get_model()
