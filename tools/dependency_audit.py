#!/usr/bin/env python3
"""Offline dependency audit: the hash lock is complete and no pin is known to be vulnerable.

Run by ./dev.sh lint (so by CI). It needs no network, which pip-audit does:

1. every requirement in requirements.lock is pinned with ``==`` and carries at
   least one ``--hash`` (``pip install --require-hashes`` takes nothing else);
2. every pin of requirements.txt and requirements-dev.txt is in the lock at the
   same version (else: run ./dev.sh lock);
3. no locked version matches a known advisory, from
   - the safety-db package (PyUp's database, installed from PyPI; a snapshot: its
     date is printed), and
   - OSV-format JSON files (the format of the PyPA advisory database and OSV) in
     ``security/advisories/`` and in any folder given with ``--advisories`` or a
     ``.zip`` of them (OSV's ``PyPI/all.zip``, where a machine can fetch it).

Exit 0 when all hold; 1 with one line per finding otherwise; 2 on bad usage.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
PROJECT_ADVISORIES = ROOT / "security" / "advisories"


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    hashes: int
    line: int


@dataclass(frozen=True)
class Finding:
    name: str
    version: str
    advisory: str
    source: str
    detail: str


def _logical_lines(path: Path):
    """Requirement-file lines with continuations joined and comments stripped."""
    buffer, start = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            yield start, buffer.strip()
        buffer = ""


def parse_lock(path: Path) -> tuple[dict[str, Pin], list[str]]:
    """The lock's pins, and the problems found reading it."""
    pins: dict[str, Pin] = {}
    problems = []
    for number, line in _logical_lines(path):
        if line.startswith("-"):
            problems.append(f"{path.name}:{number}: option {line.split()[0]} in the lock")
            continue
        parts = line.split()
        try:
            requirement = Requirement(parts[0])
        except InvalidRequirement:
            problems.append(f"{path.name}:{number}: cannot read {parts[0]!r}")
            continue
        specs = list(requirement.specifier)
        hashes = sum(1 for part in parts[1:] if part.startswith("--hash=sha256:"))
        if len(specs) != 1 or specs[0].operator != "==":
            problems.append(f"{path.name}:{number}: {requirement.name} is not pinned with ==")
            continue
        if not hashes:
            problems.append(f"{path.name}:{number}: {requirement.name} has no --hash")
        name = canonicalize_name(requirement.name)
        pins[name] = Pin(name, specs[0].version, hashes, number)
    if not pins:
        problems.append(f"{path.name}: no pinned requirement")
    return pins, problems


def parse_requirements(path: Path, seen: set[Path] | None = None) -> dict[str, str]:
    """name -> pinned version of a requirements file, following ``-r``."""
    seen = seen or set()
    seen.add(path.resolve())
    pins: dict[str, str] = {}
    for _, line in _logical_lines(path):
        if line.startswith(("-r ", "--requirement ")):
            included = (path.parent / line.split(None, 1)[1]).resolve()
            if included not in seen:
                pins.update(parse_requirements(included, seen))
            continue
        if line.startswith("-"):
            continue
        requirement = Requirement(line.split()[0])
        specs = [s for s in requirement.specifier if s.operator == "=="]
        if specs:
            pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


def _public(version: str) -> str:
    return version.split("+", 1)[0]


def check_sync(lock: dict[str, Pin], requirements: list[Path]) -> list[str]:
    problems = []
    for path in requirements:
        for name, version in parse_requirements(path).items():
            pin = lock.get(name)
            if pin is None:
                problems.append(
                    f"{path.name}: {name}=={version} is not in requirements.lock "
                    "(run ./dev.sh lock)"
                )
            elif _public(pin.version) != _public(version):
                problems.append(
                    f"{path.name}: {name}=={version} but requirements.lock has {pin.version} "
                    "(run ./dev.sh lock)"
                )
    return problems


# --- advisory sources ------------------------------------------------------------------------


def _version(value: str) -> Version | None:
    try:
        return Version(value)
    except InvalidVersion:
        return None


def safety_db_findings(lock: dict[str, Pin]) -> tuple[list[Finding], str]:
    """Match the lock against PyUp's safety-db (insecure_full.json), if installed."""
    # Located, not imported: the package's __init__ opens its data by a relative path.
    spec = importlib.util.find_spec("safety_db")
    if spec is None or not spec.submodule_search_locations:
        return [], ""
    folder = Path(next(iter(spec.submodule_search_locations)))
    data = json.loads((folder / "insecure_full.json").read_text(encoding="utf-8"))
    meta = data.pop("$meta", {})
    stamp = meta.get("timestamp")
    snapshot = datetime.fromtimestamp(stamp, UTC).date().isoformat() if stamp else "unknown date"
    by_name = {canonicalize_name(name): entries for name, entries in data.items()}
    findings = []
    for pin in lock.values():
        version = _version(pin.version)
        if version is None:
            continue
        for advisory in by_name.get(pin.name, []):
            for spec in advisory.get("specs", []):
                try:
                    matched = SpecifierSet(spec).contains(version, prereleases=True)
                except InvalidSpecifier:
                    continue
                if matched:
                    identifier = advisory.get("cve") or advisory.get("id", "?")
                    findings.append(
                        Finding(
                            pin.name,
                            pin.version,
                            f"{identifier} ({advisory.get('id', '')})",
                            "safety-db",
                            f"affected {spec}",
                        )
                    )
                    break
    return findings, f"safety-db (snapshot of {snapshot})"


def _osv_records(source: Path):
    if source.is_file() and source.suffix == ".zip":
        with zipfile.ZipFile(source) as archive:
            for member in archive.namelist():
                if member.endswith(".json"):
                    yield member, json.loads(archive.read(member))
    elif source.is_dir():
        for path in sorted(source.rglob("*.json")):
            yield path.name, json.loads(path.read_text(encoding="utf-8"))


def _osv_affects(affected: dict, version: Version, raw: str) -> str | None:
    if raw in affected.get("versions", []):
        return f"version {raw} listed"
    for rng in affected.get("ranges", []):
        if rng.get("type") != "ECOSYSTEM":
            continue
        introduced: Version | None = None
        inside = False
        for event in rng.get("events", []):
            if "introduced" in event:
                introduced = _version("0" if event["introduced"] == "0" else event["introduced"])
                inside = introduced is not None and version >= introduced
            elif "fixed" in event:
                fixed = _version(event["fixed"])
                if inside and fixed is not None and version < fixed:
                    return f"introduced {introduced}, fixed {fixed}"
                inside = False
            elif "last_affected" in event:
                last = _version(event["last_affected"])
                if inside and last is not None and version <= last:
                    return f"introduced {introduced}, last affected {last}"
                inside = False
        if inside:
            return f"introduced {introduced}, not fixed"
    return None


def osv_findings(lock: dict[str, Pin], sources: list[Path]) -> tuple[list[Finding], int]:
    findings, records = [], 0
    for source in sources:
        for member, record in _osv_records(source):
            records += 1
            for affected in record.get("affected", []):
                package = affected.get("package", {})
                if package.get("ecosystem") != "PyPI":
                    continue
                pin = lock.get(canonicalize_name(package.get("name", "")))
                version = _version(pin.version) if pin else None
                if version is None:
                    continue
                why = _osv_affects(affected, version, pin.version)
                if why:
                    aliases = ", ".join(record.get("aliases", []))
                    label = record.get("id", member) + (f" ({aliases})" if aliases else "")
                    findings.append(Finding(pin.name, pin.version, label, f"OSV {member}", why))
    return findings, records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument(
        "--requirements",
        type=Path,
        nargs="*",
        default=[ROOT / "requirements.txt", ROOT / "requirements-dev.txt"],
    )
    parser.add_argument(
        "--advisories",
        type=Path,
        action="append",
        default=[],
        help="another folder (or .zip) of OSV-format advisories",
    )
    parser.add_argument(
        "--no-safety-db", action="store_true", help="skip safety-db (for the self-tests)"
    )
    args = parser.parse_args(argv)

    if not args.lock.is_file():
        print(f"dependency audit: {args.lock} does not exist (run ./dev.sh lock)")
        return 1
    lock, problems = parse_lock(args.lock)
    problems += check_sync(lock, args.requirements)

    findings: list[Finding] = []
    sources = []
    if not args.no_safety_db:
        found, label = safety_db_findings(lock)
        if not label:
            problems.append("safety-db is not installed: pip install -r requirements.lock")
        else:
            findings += found
            sources.append(label)
    osv_sources = [PROJECT_ADVISORIES, *args.advisories]
    missing = [str(s) for s in args.advisories if not s.exists()]
    problems += [f"advisory source {m} does not exist" for m in missing]
    found, records = osv_findings(lock, [s for s in osv_sources if s.exists()])
    findings += found
    sources.append(f"{records} OSV advisories ({', '.join(str(s) for s in osv_sources)})")

    for problem in problems:
        print(f"dependency audit: {problem}")
    for f in sorted(findings, key=lambda f: (f.name, f.advisory)):
        print(
            f"dependency audit: VULNERABLE {f.name}=={f.version}: {f.advisory} "
            f"[{f.source}; {f.detail}]"
        )
    summary = f"{len(lock)} locked packages checked against {' and '.join(sources)}"
    if problems or findings:
        print(f"dependency audit FAILED: {len(findings)} known vulnerabilities, {summary}")
        return 1
    print(f"dependency audit OK: {summary}; every pin hashed; lock matches the requirements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
