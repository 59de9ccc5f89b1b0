from django.core.management.base import BaseCommand, CommandError

from content_modules.audit.services import audit_verify


class Command(BaseCommand):
    help = (
        "Verify the audit trail's keyed hash chain and its head, and report the first broken "
        "link; with --checkpoints, also hold it against the signed checkpoint files."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoints",
            action="store_true",
            help="also check every signed checkpoint in AUDIT_CHECKPOINT_DIR against the trail",
        )
        parser.add_argument(
            "--checkpoint-dir", help="the checkpoint folder (default: AUDIT_CHECKPOINT_DIR)"
        )

    def handle(self, *args, **options):
        result = audit_verify(
            checkpoints=options["checkpoints"] or bool(options["checkpoint_dir"]),
            checkpoint_dir=options["checkpoint_dir"],
        )
        if not result.ok:
            where = f" at entry #{result.broken_seq}" if result.broken_seq else ""
            raise CommandError(
                f"Audit trail BROKEN{where}: {result.reason} "
                f"({result.checked} entries verified before it)"
            )
        against = (
            f", held against {result.checkpoints} signed checkpoints" if result.checkpoints else ""
        )
        for note in result.notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(
            self.style.SUCCESS(f"Audit trail OK: {result.checked} entries verified{against}.")
        )
