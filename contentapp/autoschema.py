"""Operation names and tags a generated client can live with.

drf-spectacular derives an operationId from the path (``v1_audit.csv_retrieve``)
and a tag from its first segment (``v1``). Generated clients turn both into
function and module names, so here every operationId is ``<resource>_<action>``
in lower snake case (no ``v1_`` prefix, no dots) and every operation carries
exactly one audience tag: ``engine`` (the personalization engine's contract),
``authoring``, ``review`` or ``admin``.
"""

from __future__ import annotations

import re

from drf_spectacular.drainage import warn
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

ENGINE = "engine"
AUTHORING = "authoring"
REVIEW = "review"
ADMIN = "admin"
AUDIENCES = (ENGINE, AUTHORING, REVIEW, ADMIN)

# The audience of every view module; _BY_VIEW overrides it for one view (or one method).
_BY_MODULE = {
    "content_modules.accounts.api": ENGINE,
    "content_modules.delivery.api": ENGINE,
    "content_modules.engagement.api": ENGINE,
    "content_modules.affinity.api": ENGINE,
    "content_modules.affinity.model_api": ENGINE,
    "content_modules.library.api": AUTHORING,
    "content_modules.review.api": REVIEW,
    "content_modules.webhooks.api": ADMIN,
    "content_modules.analytics.api": AUTHORING,
    "content_modules.experiments.api": ADMIN,
}
_BY_VIEW = {
    "SimilarModulesView": AUTHORING,
    "ModelListView": ADMIN,
    "ModelActivateView": ADMIN,
    "VocabularyView.post": ADMIN,
    "ReviewReassignView": ADMIN,
    "AuditExportView": ADMIN,
    "ModuleAuditExportView": ADMIN,
}

_NOT_SNAKE = re.compile(r"[^a-z0-9]+")


def snake_operation_id(raw: str) -> str:
    """``v1_audit.csv_retrieve`` style names as ``audit_csv_retrieve``."""
    return _NOT_SNAKE.sub("_", raw.lower()).strip("_")


class AutoSchema(SpectacularAutoSchema):
    def get_operation_id(self) -> str:
        return snake_operation_id(super().get_operation_id())

    def get_tags(self) -> list[str]:
        view = type(self.view)
        method = self.method.lower()
        audience = (
            _BY_VIEW.get(f"{view.__name__}.{method}")
            or _BY_VIEW.get(view.__name__)
            or _BY_MODULE.get(view.__module__)
        )
        if audience is None:
            warn(f"{view.__module__}.{view.__name__} has no audience tag (contentapp.autoschema).")
            return super().get_tags()
        return [audience]
