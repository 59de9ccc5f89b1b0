from django.core.management.base import BaseCommand, CommandError

from content_modules.library.models import Module
from content_modules.review.exports import audit_csv_lines


class Command(BaseCommand):
    help = "Export the audit trail as CSV (all entries, or one module's with --module)."

    def add_arguments(self, parser):
        parser.add_argument("--module", type=int, help="only the entries of this module id")
        parser.add_argument("--output", "-o", help="write to this file instead of stdout")

    def handle(self, *args, module=None, output=None, **options):
        if module is not None and not Module.objects.filter(pk=module).exists():
            raise CommandError(f"Module {module} does not exist.")
        if output:
            with open(output, "w", encoding="utf-8", newline="") as handle:
                count = self._write(handle, module)
            self.stderr.write(f"Wrote {count} audit entries to {output}.")
        else:
            self._write(self.stdout, module)

    def _write(self, handle, module) -> int:
        count = -1  # the header line is not an entry
        for line in audit_csv_lines(module):
            if handle is self.stdout:
                handle.write(line, ending="")
            else:
                handle.write(line)
            count += 1
        return count
