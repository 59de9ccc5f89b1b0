"""(Re)embed module versions with the configured sentence-transformers model."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm  # type: ignore[import-untyped]  # no types-tqdm in the lock

from content_modules.affinity import embeddings
from content_modules.library.models import ModuleVersion


class Command(BaseCommand):
    help = (
        "Embed every module version whose embedding is missing or out of date "
        "(text or model changed); --force re-embeds all of them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Re-embed even up-to-date ones.")
        parser.add_argument("--batch-size", type=int, default=256, help="Versions per batch.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, force: bool, batch_size: int, no_progress: bool, **options) -> None:
        ids = list(ModuleVersion.objects.order_by("pk").values_list("pk", flat=True))
        name, sha = embeddings.model_info()
        self.stdout.write(f"model {name} (sha256 {sha[:12]}), {len(ids)} versions")
        written = 0
        with tqdm(total=len(ids), unit="version", disable=no_progress, file=sys.stderr) as bar:
            for start in range(0, len(ids), batch_size):
                chunk = ids[start : start + batch_size]
                written += embeddings.embed_versions(chunk, force=force)
                bar.update(len(chunk))
        self.stdout.write(
            self.style.SUCCESS(f"embedded {written} versions; {len(ids) - written} up to date")
        )
