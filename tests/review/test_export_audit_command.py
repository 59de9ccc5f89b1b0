"""The export_audit management command writes the trail as CSV."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from content_modules.audit.models import AuditEntry
from tests.factories import make_module

from .helpers import submit


def test_export_audit_writes_every_entry_in_chain_order(author, tmp_path):
    submit(make_module(author))
    out = tmp_path / "audit.csv"

    call_command("export_audit", "--output", str(out))

    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [int(r["seq"]) for r in rows] == list(
        AuditEntry.objects.order_by("seq").values_list("seq", flat=True)
    )
    assert rows[-1]["action"] == "version.submitted"
    assert rows[-1]["entry_hash"] == AuditEntry.objects.order_by("seq").last().entry_hash


def test_export_audit_for_one_module_to_stdout(author):
    first = make_module(author)
    make_module(author)
    stdout = io.StringIO()

    call_command("export_audit", "--module", str(first.module_id), stdout=stdout)

    rows = list(csv.DictReader(io.StringIO(stdout.getvalue())))
    assert rows and {r["module_id"] for r in rows} == {str(first.module_id)}


def test_export_audit_refuses_an_unknown_module(db):
    with pytest.raises(CommandError):
        call_command("export_audit", "--module", "424242")
