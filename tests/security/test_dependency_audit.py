"""Issue 11 point 14: the offline dependency audit fails CI on a known-vulnerable pin.

Each case runs tools/dependency_audit.py as ./dev.sh lint does, on requirement
files written for the test, and asserts its exit code and what it prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "dependency_audit.py"
HASH = "--hash=sha256:" + "0" * 64


def audit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_repository_lock_passes_the_audit():
    result = audit()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "dependency audit OK" in result.stdout
    assert "safety-db (snapshot of 2021-07-01)" in result.stdout


def test_an_old_vulnerable_django_pin_fails_the_audit(tmp_path):
    lock = write(tmp_path / "requirements.lock", f"django==2.2.0 \\\n    {HASH}\n")
    requirements = write(tmp_path / "requirements.txt", "Django==2.2.0\n")

    result = audit("--lock", str(lock), "--requirements", str(requirements))

    assert result.returncode == 1
    assert "VULNERABLE django==2.2.0: CVE-2019-" in result.stdout
    assert "[safety-db; affected" in result.stdout
    assert "dependency audit FAILED" in result.stdout


def test_a_pin_matching_a_project_osv_advisory_fails_the_audit(tmp_path):
    lock = write(tmp_path / "requirements.lock", f"django==4.2.0 \\\n    {HASH}\n")

    result = audit("--lock", str(lock), "--requirements", "--no-safety-db")

    assert result.returncode == 1
    assert "VULNERABLE django==4.2.0: CONTENTAPP-2023-0001 (CVE-2023-31047)" in result.stdout
    assert "fixed 4.2.1" in result.stdout


def test_an_advisory_folder_given_on_the_command_line_is_read(tmp_path):
    folder = tmp_path / "osv"
    folder.mkdir()
    record = {
        "id": "PYSEC-0000-0",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Celery"},
                "versions": ["5.7.0"],
            }
        ],
    }
    write(folder / "PYSEC-0000-0.json", json.dumps(record))
    lock = write(tmp_path / "requirements.lock", f"celery==5.7.0 \\\n    {HASH}\n")

    result = audit(
        "--lock", str(lock), "--requirements", "--no-safety-db", "--advisories", str(folder)
    )

    assert result.returncode == 1
    assert "VULNERABLE celery==5.7.0: PYSEC-0000-0" in result.stdout


def test_a_pin_without_a_hash_or_missing_from_the_lock_fails(tmp_path):
    lock = write(tmp_path / "requirements.lock", "celery==5.7.0\n")
    requirements = write(tmp_path / "requirements.txt", "celery==5.7.0\nredis==8.1.0\n")

    result = audit("--lock", str(lock), "--requirements", str(requirements), "--no-safety-db")

    assert result.returncode == 1
    assert "celery has no --hash" in result.stdout
    assert "redis==8.1.0 is not in requirements.lock (run ./dev.sh lock)" in result.stdout


def test_a_version_differing_from_the_lock_fails(tmp_path):
    lock = write(tmp_path / "requirements.lock", f"celery==5.7.0 \\\n    {HASH}\n")
    requirements = write(tmp_path / "requirements.txt", "celery==5.6.0\n")

    result = audit("--lock", str(lock), "--requirements", str(requirements), "--no-safety-db")

    assert result.returncode == 1
    assert "celery==5.6.0 but requirements.lock has 5.7.0" in result.stdout
