"""`manage.py check --deploy` refuses production without an audit key and checkpoint folder."""

from __future__ import annotations

import pytest

from tests.test_settings import manage, production_env


def test_production_passes_the_deploy_check_with_an_audit_key_and_checkpoint_folder(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"AUDIT_HMAC_KEY": None}, "audit.E001"),
        ({"AUDIT_HMAC_KEY": "short"}, "audit.E002"),
        ({"SECRET_KEY": "s" * 60, "AUDIT_HMAC_KEY": "s" * 60}, "audit.E003"),
        ({"AUDIT_CHECKPOINT_DIR": None}, "audit.E004"),
    ],
)
def test_production_fails_the_deploy_check_without_a_proper_audit_key_or_folder(
    tmp_path, overrides, error
):
    result = manage(production_env(tmp_path, **overrides), "check", "--deploy")

    assert result.returncode != 0
    assert error in result.stdout + result.stderr
