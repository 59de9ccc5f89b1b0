from django.core.management.base import BaseCommand, CommandError

from content_modules.audit.checkpoints import ChainBrokenError, checkpoint_write


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of the audit chain's last entry to AUDIT_CHECKPOINT_DIR "
        "(what the beat task audit-checkpoint does periodically)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint-dir", help="the checkpoint folder (default: AUDIT_CHECKPOINT_DIR)"
        )

    def handle(self, *args, **options):
        try:
            result = checkpoint_write(directory=options["checkpoint_dir"])
        except ChainBrokenError as exc:
            raise CommandError(f"Audit chain NOT checkpointed, it does not verify: {exc}") from exc
        self.stdout.write(result.reason)
