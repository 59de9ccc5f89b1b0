"""Embeddings of module versions with the real all-MiniLM-L6-v2 model."""

import numpy as np

from content_modules.affinity import embeddings
from content_modules.affinity.models import VersionEmbedding
from tests import factories

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
