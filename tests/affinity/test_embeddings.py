"""Embeddings of module versions with the real all-MiniLM-L6-v2 model."""

import io

import numpy as np
import pytest
from django.core.management import call_command

from content_modules.affinity import embeddings, tasks
from content_modules.affinity.models import VersionEmbedding
from content_modules.library.models import ModuleVersion
from content_modules.library.services import module_edit
from contentapp.celery import app as celery_app
from tests import factories
from tests.celery_support import broker_down, reset_broker_connections

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def test_similar_sentences_score_higher_than_unrelated_ones(embedding_model):
    vectors = embeddings.encode(
        [
            "CardioZen reduced major cardiac events by 24% versus placebo.",
            "Patients taking CardioZen had a quarter fewer heart attacks and strokes.",
            "Our office will be closed on bank holidays.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.3


def test_model_info_names_the_packaged_model_and_its_weights_hash():
    assert embeddings.model_info() == ("sentence-transformers/all-MiniLM-L6-v2", MINILM_SHA256)


def test_embed_versions_stores_vector_with_model_and_is_idempotent(db, embedding_model, author):
    version = factories.make_module(author)
    VersionEmbedding.objects.filter(version=version).delete()

    written = embeddings.embed_versions([version.pk])

    row = VersionEmbedding.objects.get(version=version)
    assert written == 1
    assert (row.dim, row.model_name, row.model_sha256) == (
        384,
        "sentence-transformers/all-MiniLM-L6-v2",
        MINILM_SHA256,
    )
    expected = embeddings.encode([version.embedding_text()])[0]
    np.testing.assert_allclose(row.as_array(), expected, atol=1e-5)
    assert embeddings.embed_versions([version.pk]) == 0
    assert embeddings.embed_versions([version.pk], force=True) == 1
    ids, matrix = embeddings.embedding_matrix([version.pk, 999_999])
    assert ids == [version.pk]
    assert matrix.shape == (1, 384)


@pytest.fixture
def celery_conf():
    """Change the Celery app's configuration for one test and restore it after."""
    keys = ("task_always_eager", "broker_url")
    saved = {key: celery_app.conf[key] for key in keys}
    yield celery_app.conf
    celery_app.conf.update(saved)
    reset_broker_connections()


def test_embed_version_task_tolerates_a_version_that_is_gone(db, embedding_model):
    assert tasks.embed_version_task.apply(args=(987_654,)).get() == 0


def test_editing_a_draft_re_embeds_the_new_text(db, embedding_model, author):
    version = factories.make_module(author)
    embeddings.embed_versions([version.pk])
    before = VersionEmbedding.objects.get(version=version).as_array()

    module_edit(
        actor=author, module=version.module, changes={"body": "Take one tablet daily with food."}
    )
    written = embeddings.embed_versions([version.pk])

    after = VersionEmbedding.objects.get(version=version)
    assert written == 1
    assert after.text_sha256 == embeddings.text_sha256(
        ModuleVersion.objects.get(pk=version.pk).embedding_text()
    )
    assert float(before @ after.as_array()) < 0.99


def test_a_new_module_is_embedded_after_commit_by_the_eager_task(
    db, embedding_model, author, celery_conf, django_capture_on_commit_callbacks
):
    celery_conf.task_always_eager = True

    with django_capture_on_commit_callbacks(execute=True):
        version = factories.make_module(author, headline="Once-daily dosing for busy patients")

    row = VersionEmbedding.objects.get(version=version)
    assert (row.dim, row.model_sha256) == (384, MINILM_SHA256)


def test_with_the_broker_down_the_author_is_not_failed_and_the_sweeper_embeds_later(
    db, embedding_model, author, django_capture_on_commit_callbacks, caplog
):
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        version = factories.make_module(author)

    assert ModuleVersion.objects.filter(pk=version.pk).exists()
    assert not VersionEmbedding.objects.filter(version=version).exists()
    assert "the sweeper will" in caplog.text

    swept = tasks.embed_missing_task.apply().get()

    assert swept == 1
    assert VersionEmbedding.objects.filter(version=version).exists()
    assert tasks.embed_missing_task.apply().get() == 0


def test_sweeper_is_scheduled_by_celery_beat(settings):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "content_modules.affinity.tasks.embed_missing_task" in scheduled


def test_embed_modules_command_embeds_everything_and_force_redoes_it(db, embedding_model, author):
    versions = [factories.make_module(author) for _ in range(3)]
    out = io.StringIO()

    call_command("embed_modules", "--no-progress", stdout=out)
    call_command("embed_modules", "--no-progress", stdout=out)
    call_command("embed_modules", "--no-progress", "--force", stdout=out)

    lines = [line for line in out.getvalue().splitlines() if line.startswith("embedded")]
    assert lines == [
        "embedded 3 versions; 0 up to date",
        "embedded 0 versions; 3 up to date",
        "embedded 3 versions; 0 up to date",
    ]
    assert VersionEmbedding.objects.filter(version__in=versions).count() == 3


@pytest.mark.celery_worker
def test_a_real_worker_embeds_a_module_created_through_module_create(
    live_celery_worker, embedding_model
):
    author = factories.make_user("author")

    version = factories.make_module(author, headline="A real worker embedded this headline")

    row = live_celery_worker.wait_for(
        lambda: VersionEmbedding.objects.filter(version_id=version.pk).first()
    )
    assert (row.dim, row.model_name, row.model_sha256) == (
        384,
        "sentence-transformers/all-MiniLM-L6-v2",
        MINILM_SHA256,
    )
    expected = embeddings.encode([version.embedding_text()])[0]
    np.testing.assert_allclose(row.as_array(), expected, atol=1e-4)
    assert "embed_version_task" in live_celery_worker.log()


def test_embed_versions_stores_one_vector_per_clause_and_fills_rows_from_before(
    db, embedding_model, author
):
    version = factories.make_module(
        author,
        headline="Once-daily dosing",
        body="Data summary: results were clear. Think of care-home residents.",
        key_message="Fewer discontinuations.",
    )
    VersionEmbedding.objects.filter(version=version).delete()

    embeddings.embed_versions([version.pk])

    row = VersionEmbedding.objects.get(version=version)
    clauses = [
        "Once-daily dosing",
        "Data summary:",
        "results were clear.",
        "Think of care-home residents.",
        "Fewer discontinuations.",
    ]
    got = np.frombuffer(bytes(row.clause_vectors), dtype=np.float32).reshape(row.n_clauses, -1)
    assert row.n_clauses == len(clauses) + bool(version.call_to_action)
    np.testing.assert_allclose(got[: len(clauses)], embeddings.encode(clauses), atol=1e-5)
    ids, matrix, owner = embeddings.clause_matrix([version.pk])
    assert ids == [version.pk] and matrix.shape == (row.n_clauses, 384)
    assert (owner == 0).all()
    # A row stored before clause embeddings existed (same text, no clauses) is redone.
    VersionEmbedding.objects.filter(pk=row.pk).update(clause_vectors=b"", n_clauses=0)
    assert embeddings.clause_matrix([version.pk])[0] == []
    assert embeddings.embed_versions([version.pk]) == 1
    assert VersionEmbedding.objects.get(pk=row.pk).n_clauses == row.n_clauses
