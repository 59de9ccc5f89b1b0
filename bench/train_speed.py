"""Training speed: 1,000,000 events of 100,000 HCPs, generated straight into PostgreSQL.

    .venv/bin/python bench/train_speed.py [--events 1000000] [--hcps 100000] [--modules 1000]

Creates (drops first) its own database, writes versions, HCPs and events with
COPY, stores unit-norm vectors as the versions' embeddings and clause
embeddings (embedding is timed elsewhere: it happens once per version, not per
training): each version has a clause near its message's direction, one near
its tonality's, one near its format's (the filter in ``learning.topics`` drops
those) and two near hidden topics, so training runs the clause text features.

Then, in a fresh process (so the peak is training's, not the generator's), it
runs what the product runs for a training request: read, features, fit, the
champion/challenger gate's fit and scoring, the evaluation (its fit, the no-text
ablation, the baselines), store and activate; and reports the CPU time
(``time.process_time``: user + sys of every thread of the process, the figure
to read on a shared machine, where wall time mostly measures the neighbours),
wall time and the peak resident memory (``ru_maxrss``, and /proc/self/status
VmRSS sampled every 20 ms) per stage.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The highest VmRSS seen since the last ``take`` (sampled by a thread)."""

    def __init__(self, every: float = 0.02) -> None:
        import threading

        self.high = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.high = max(self.high, rss_mb())

    def take(self) -> float:
        high, self.high = max(self.high, rss_mb()), rss_mb()
        return high

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def fresh_database(name: str, server: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def copy_rows(table: str, columns: list[str], lines: list[str]) -> None:
    from django.db import connection

    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        buf = io.StringIO()
        for i, line in enumerate(lines):
            buf.write(line)
            if i % 50_000 == 49_999:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def clause_vectors(rng: np.random.Generator, n_modules: int) -> list[np.ndarray]:
    """Five clauses per version: its message, tonality and format lines, two topics.

    Uses the same draws as the tags (message ``i % 8`` etc. are not the tags:
    the clauses only need the structure, tag-like clusters and topic ones).
    """
    directions = {kind: _unit(rng.normal(size=(n, 384))) for kind, n in TAG_SIZES.items()}
    topics = _unit(rng.normal(size=(20, 384)))
    out = []
    for i in range(n_modules):
        rows = [directions[kind][i % n] for kind, n in TAG_SIZES.items()]
        rows += list(topics[rng.choice(20, size=2, replace=False)])
        out.append(_unit(np.asarray(rows) + 0.35 * rng.normal(size=(5, 384)) / np.sqrt(384)))
    return out


TAG_SIZES = {"message": 8, "tonality": 4, "format": 5}


def generate(n_events: int, n_hcps: int, n_modules: int, seed: int) -> None:
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from content_modules.affinity.embeddings import model_info
    from content_modules.library.models import Brand, Channel, Market, Tag

    rng = np.random.default_rng(seed)
    user = User.objects.create_user("speed-author", password="x" * 20)
    brand = Brand.objects.create(slug="speed", name="Speed")
    market = Market.objects.get_or_create(code="UK", defaults={"name": "UK"})[0]
    tags = {}
    for kind, n in (("message", 8), ("theme", 6), ("tonality", 4), ("format", 5)):
        tags[kind] = [
            Tag.objects.get_or_create(
                kind=kind, slug=f"{kind}-{i}", defaults={"label": f"{kind} {i}"}
            )[0].pk
            for i in range(n)
        ]
    now = datetime.now(UTC)
    stamp = now.isoformat()
    with transaction.atomic():
        copy_rows(
            "library_module",
            ["id", "brand_id", "market_id", "created_by_id", "created_at"],
            [f"{i + 1}\t{brand.pk}\t{market.pk}\t{user.pk}\t{stamp}\n" for i in range(n_modules)],
        )
        lines = []
        for i in range(n_modules):
            # The tags the clauses restate (``clause_vectors``).
            msg = tags["message"][i % 8]
            ton = tags["tonality"][i % 4]
            fmt = tags["format"][i % 5]
            lines.append(
                f"{i + 1}\t{i + 1}\t1\tapproved\tModule {i}\tHeadline {i}\tBody {i}\tKey {i}\t\t\t"
                f"{msg}\t{ton}\t{fmt}\tspeed{i}\t{user.pk}\t{stamp}\t{stamp}\t{stamp}\t{stamp}\n"
            )
        copy_rows(
            "library_moduleversion",
            [
                "id",
                "module_id",
                "number",
                "status",
                "title",
                "headline",
                "body",
                "key_message",
                "call_to_action",
                "image_alt",
                "message_id",
                "tonality_id",
                "format_id",
                "content_hash",
                "created_by_id",
                "created_at",
                "updated_at",
                "approved_at",
                "status_changed_at",
            ],
            lines,
        )
        theme_lines = []
        for i in range(n_modules):
            for t in rng.choice(tags["theme"], size=int(rng.integers(1, 3)), replace=False):
                theme_lines.append(f"{i + 1}\t{t}\n")
        copy_rows("library_moduleversion_themes", ["moduleversion_id", "tag_id"], theme_lines)
        email = Channel.objects.get(slug="email").pk
        copy_rows(
            "library_moduleversion_channels",
            ["moduleversion_id", "channel_id"],
            [f"{i + 1}\t{email}\n" for i in range(n_modules)],
        )
        with connection.cursor() as cursor:
            cursor.execute("UPDATE library_module SET latest_id = id")
            for table in ("library_module", "library_moduleversion"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n_modules})"
                )
        name, sha = model_info()
        vectors = rng.normal(size=(n_modules, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        from content_modules.affinity.models import VersionEmbedding

        clauses = clause_vectors(rng, n_modules)
        VersionEmbedding.objects.bulk_create(
            (
                VersionEmbedding(
                    version_id=i + 1,
                    model_name=name,
                    model_sha256=sha,
                    dim=384,
                    vector=vectors[i].tobytes(),
                    text_sha256="0" * 64,
                    clause_vectors=clauses[i].tobytes(),
                    n_clauses=len(clauses[i]),
                )
                for i in range(n_modules)
            ),
            batch_size=500,
        )
    specialties = [f"spec-{i}" for i in range(12)]
    segments = [f"seg-{i}" for i in range(4)]
    regions = [f"region-{i}" for i in range(20)]
    channels = ["email", "web", "rep_email"]
    zones = ["Europe/London", "Europe/Berlin", "America/New_York", "Asia/Tokyo", ""]
    t0 = time.perf_counter()
    with transaction.atomic():
        copy_rows(
            "affinity_hcp",
            [
                "id",
                "external_id",
                "specialty",
                "segment",
                "region",
                "preferred_channel",
                "timezone",
                "microsegment",
                "attributes",
                "created_at",
                "updated_at",
            ],
            [
                f"{i + 1}\tS-{i:07d}\t{specialties[rng.integers(12)]}\t"
                f"{segments[rng.integers(4)]}\t"
                f"{regions[rng.integers(20)]}\t{channels[rng.integers(3)]}\t"
                f"{zones[rng.integers(len(zones))]}\t\t{{}}\t{stamp}\t{stamp}\n"
                for i in range(n_hcps)
            ],
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('affinity_hcp', 'id'), {n_hcps})")
    print(f"HCPs: {n_hcps:,} in {time.perf_counter() - t0:.1f}s")
    # Events: HCP activity is skewed (a few very active HCPs, many occasional ones).
    t0 = time.perf_counter()
    activity = rng.pareto(1.5, n_hcps) + 1
    hcp = rng.choice(n_hcps, size=n_events, p=activity / activity.sum()) + 1
    module = rng.integers(1, n_modules + 1, n_events)
    kind = rng.choice(
        ["delivered", "opened", "clicked", "read"], size=n_events, p=[0.62, 0.25, 0.09, 0.04]
    )
    seconds = rng.uniform(0, 180 * 86400, n_events)
    start = now - timedelta(days=181)
    dwell = rng.uniform(1, 90, n_events)
    with transaction.atomic():
        lines = []
        for i in range(n_events):
            when = (start + timedelta(seconds=float(seconds[i]))).isoformat()
            d = f"{dwell[i]:.1f}" if kind[i] == "read" else "\\N"
            lines.append(
                f"{uuid.uuid4()}\t{hcp[i]}\t{module[i]}\t{module[i]}\t{kind[i]}\t{when}\temail\t\\N\t{d}\t{stamp}\t\\N\n"
            )
        copy_rows(
            "affinity_engagementevent",
            [
                "event_id",
                "hcp_id",
                "module_id",
                "version_id",
                "type",
                "occurred_at",
                "channel",
                "recommendation_id",
                "dwell_seconds",
                "received_at",
                "processed_at",
            ],
            lines,
        )
    with connection.cursor() as cursor:
        # VACUUM as well: it sets the visibility map that lets index-only scans skip the
        # table, as autovacuum does on a production server after bulk inserts (this
        # machine's server runs with autovacuum off, so a bench must do it itself).
        cursor.execute("VACUUM (ANALYZE)")
    print(f"events: {n_events:,} in {time.perf_counter() - t0:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hcps", type=int, default=100_000)
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--db", default="h6_train_speed")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--reuse", action="store_true", help="Reuse an earlier run's database.")
    parser.add_argument(
        "--no-evaluate", action="store_true", help="Leave out the evaluation (the API's default)."
    )
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if not args.reuse:
        # Generate in a process of its own, so the training's peak is measured alone.
        import subprocess

        fresh_database(args.db, args.server)
        forwarded = [a for a in sys.argv[1:] if a != "--reuse"]
        generator = [sys.executable, __file__, *forwarded, "--reuse", "--generate-only"]
        subprocess.run(generator, check=True)
    url = f"{args.server}/{args.db}"
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    if args.generate_only:
        call_command("migrate", verbosity=0)
        generate(args.events, args.hcps, args.modules, args.seed)
        return

    from content_modules.affinity.models import AffinityModel, EngagementEvent
    from content_modules.affinity.training_runs import affinity_model_train

    AffinityModel.objects.update(is_active=False)  # the same gate (no champion) every run
    n = EngagementEvent.objects.count()
    before = peak_rss_mb()
    marks: list[tuple[str, float, float, float]] = []
    sampler = RssSampler()
    cpu0 = time.process_time()

    def progress(message: str) -> None:
        marks.append((message, time.perf_counter(), sampler.take(), time.process_time()))

    t0 = time.perf_counter()
    stored = affinity_model_train(actor=None, progress=progress, evaluate=not args.no_evaluate)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    marks.append(("end", time.perf_counter(), sampler.take(), time.process_time()))
    sampler.stop()
    verdict = "UNDER" if wall < 120 else "OVER"
    peak = peak_rss_mb()
    print(
        f"\ntrained {stored.model_version} ({stored.status}) on {n:,} events / "
        f"{stored.n_hcps:,} HCPs in {wall:.1f}s wall, {cpu:.1f}s CPU "
        f"({verdict} the 2-minute budget); load average {os.getloadavg()[0]:.1f}"
    )
    print("stages (CPU, wall, highest RSS during the stage):")
    for (message, begun, _, cpu_in), (_next, ended, high, cpu_out) in zip(
        marks, marks[1:], strict=False
    ):
        label = message if _next != "end" else f"{message} + store and activate"
        print(f"  {cpu_out - cpu_in:7.1f}s CPU {ended - begun:7.1f}s  {high:7,.0f} MB  {label}")
    verdict = "UNDER" if peak < 2000 else "OVER"
    print(
        f"peak RSS: {peak:,.0f} MB ({verdict} 2 GB; before training {before:,.0f} MB); "
        f"artifact {len(bytes(stored.artifact)) / 1e6:.1f} MB; cores: {os.cpu_count()}"
    )
    print(f"calibration: {stored.metrics.get('calibration')}")
    evaluation = stored.metrics.get("evaluation") or {}
    for name, entry in (evaluation.get("methods") or {}).items():
        print(f"  {name:20s} ndcg@5 {entry.get('ndcg@5')}")


if __name__ == "__main__":
    main()
