"""Fixtures for the affinity tests: the real embedding model, loaded once."""

import pytest

from content_modules.affinity import embeddings


@pytest.fixture(scope="session")
def embedding_model():
    """The real sentence-transformers model from disk, loaded once per test session."""
    return embeddings.get_model()
