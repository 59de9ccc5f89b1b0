"""Ingestion benchmark: engagement events through the real API over HTTP (run by hand).

    .venv/bin/python bench/ingest.py                      # 200,000 events, batches of 5,000
    .venv/bin/python bench/ingest.py --events 50000 --batch 10000 --workers 3

It (re)creates a PostgreSQL database of its own (``--database``, default
``bench_ingest`` on ``--pg``), migrates it, creates an engine service account,
approved modules and a pool of HCPs (half of them known, half created on the fly
by the events), starts gunicorn on 127.0.0.1 against that database, then posts
pre-serialised batches from ``--concurrency`` client threads with keep-alive
connections and prints events/s. Finally it replays one batch (all duplicates)
and checks the table holds exactly the events sent. Target: >= 5,000 events/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENT_TYPES = ["delivered", "opened", "clicked", "read", "dismissed"]
CHANNELS = ["email", "rep_email", "web", "rep_visit", "webinar"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--hcps", type=int, default=20_000)
    parser.add_argument("--modules", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="client threads")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="bench_ingest")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def recreate_database(pg: str, name: str) -> str:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{pg}/{name}"


def setup_world(args: argparse.Namespace) -> tuple[str, list[int], list[str]]:
    """Migrate, then create the engine account, approved modules and known HCPs."""
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.utils import timezone

    from content_modules.accounts.roles import Role
    from content_modules.accounts.tokens import token_issue
    from content_modules.affinity.models import HCP
    from content_modules.library.models import (
        Brand,
        Channel,
        Market,
        ModuleVersion,
        Tag,
        TagKind,
        VersionStatus,
    )
    from content_modules.library.services import VersionContent, module_create
    from content_modules.library.signals import version_content_changed

    call_command("migrate", verbosity=0)
    # Embedding the modules is not what this benchmark measures.
    version_content_changed.disconnect(dispatch_uid="affinity.embed_version_on_change")

    engine = User.objects.create_user("bench-engine", password=uuid.uuid4().hex)
    engine.groups.add(Group.objects.get(name=Role.ENGINE))
    author = User.objects.create_user("bench-author", password=uuid.uuid4().hex)
    author.groups.add(Group.objects.get(name=Role.AUTHOR))
    token = token_issue(user=engine, name="ingest bench")[1]

    tags = {}
    for kind, slug in [
        (TagKind.MESSAGE, "efficacy"),
        (TagKind.THEME, "outcomes"),
        (TagKind.TONALITY, "clinical"),
        (TagKind.FORMAT, "text"),
    ]:
        tags[kind], _ = Tag.objects.get_or_create(kind=kind, slug=slug, defaults={"label": slug})
    brand, _ = Brand.objects.get_or_create(slug="cardiozen", defaults={"name": "CardioZen"})
    market, _ = Market.objects.get_or_create(code="UK", defaults={"name": "United Kingdom"})
    channels = list(Channel.objects.all())
    module_ids = []
    for i in range(args.modules):
        version = module_create(
            actor=author,
            brand=brand,
            market=market,
            content=VersionContent(
                title=f"Bench module {i}",
                headline=f"Headline {i}",
                body=f"Body of bench module {i}.",
                key_message=f"Key message {i}.",
                call_to_action="Read more",
                message=tags[TagKind.MESSAGE],
                tonality=tags[TagKind.TONALITY],
                format=tags[TagKind.FORMAT],
                themes=[tags[TagKind.THEME]],
                channels=channels,
                references=[],
                expires_on=None,
                image=None,
            ),
        )
        module_ids.append(version.module_id)
    # Approval through MLR review is not what this benchmark measures either.
    ModuleVersion.objects.update(
        status=VersionStatus.APPROVED,
        approved_at=timezone.now() - timedelta(days=400),
        status_changed_at=timezone.now(),
    )
    hcps = [f"HCP-{i:06d}" for i in range(args.hcps)]
    HCP.objects.bulk_create(
        [HCP(external_id=x, specialty="cardiology") for x in hcps[: len(hcps) // 2]],
        batch_size=5000,
    )
    from django.db import connections

    connections.close_all()
    return token, module_ids, hcps


def make_batches(args, module_ids, hcps) -> list[bytes]:
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    batches = []
    for start in range(0, args.events, args.batch):
        events = []
        for _ in range(min(args.batch, args.events - start)):
            event_type = rng.choice(EVENT_TYPES)
            events.append(
                {
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "hcp": rng.choice(hcps),
                    "module": rng.choice(module_ids),
                    "type": event_type,
                    "occurred_at": (now - timedelta(seconds=rng.randrange(90 * 86400))).isoformat(),
                    "channel": rng.choice(CHANNELS),
                    "recommendation_id": None,
                    "dwell_seconds": round(rng.uniform(1, 300), 1)
                    if event_type == "read"
                    else None,
                }
            )
        batches.append(json.dumps({"events": events}).encode())
    return batches


def free_port(port: int) -> int:
    """The given port if nothing listens there (0: any free port); abort otherwise."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"port {port} is taken: another server must not receive our batches")
        return sock.getsockname()[1]


def start_gunicorn(args, database_url: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="contentapp.settings",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        # Keep each worker's connection for the whole run, so the backends
        # measured before are the ones measured after.
        DB_CONN_MAX_AGE="3600",
    )
    env.pop("REDIS_URL", None)
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "contentapp.wsgi",
        "--bind",
        f"127.0.0.1:{args.port}",
        "--workers",
        str(args.workers),
        "--timeout",
        "120",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
            conn.request("GET", "/api/schema/")
            conn.getresponse().read()
            return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("gunicorn did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


def server_cpu(server: subprocess.Popen, database: str) -> tuple[float, float]:
    """CPU seconds so far of the gunicorn workers and of this database's PostgreSQL backends."""
    import psycopg

    app = sum(_cpu_seconds(pid) for pid in _children(server.pid))
    with psycopg.connect(f"{ARGS.pg}/postgres", autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [database]
            ).fetchall()
        ]
    return app, sum(_cpu_seconds(pid) for pid in pids)


def post_all(args, token: str, batches: list[bytes]) -> tuple[float, dict]:
    """Post every batch from client threads; answer (seconds, summed answers)."""
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    lock = threading.Lock()
    queue = list(enumerate(batches))
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=300)
        while True:
            with lock:
                if not queue:
                    return
                _, body = queue.pop(0)
            conn.request("POST", "/api/v1/events", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                errors.append(f"{response.status}: {payload[:300]!r}")
                continue
            answer = json.loads(payload)
            with lock:
                totals["accepted"] += answer["accepted"]
                totals["duplicates"] += answer["duplicates"]
                totals["rejected"] += len(answer["rejected"])

    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, first: {errors[0]}")
    return elapsed, totals


ARGS: argparse.Namespace


def main() -> None:
    global ARGS
    args = ARGS = parse_args()
    database_url = recreate_database(args.pg, args.database)
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")
    os.environ.setdefault("ENGINE_THROTTLE_RATE", "")  # measure serving, not the throttle
    print(f"database {args.database}: migrating and creating {args.modules} approved modules")
    token, module_ids, hcps = setup_world(args)
    batches = make_batches(args, module_ids, hcps)
    size = sum(len(b) for b in batches) / len(batches)
    print(
        f"{args.events:,} events in {len(batches)} batches of {args.batch:,} ({size / 1e6:.1f} MB)"
    )
    args.port = free_port(args.port)
    server = start_gunicorn(args, database_url)
    try:
        # Warm-up: small batches so every worker has imported the app and connected.
        warm = {**vars(args), "events": 200 * args.workers, "batch": 100, "seed": 1}
        post_all(args, token, make_batches(argparse.Namespace(**warm), module_ids, hcps))
        app_before, db_before = server_cpu(server, args.database)
        elapsed, totals = post_all(args, token, batches)
        app_after, db_after = server_cpu(server, args.database)
        rate = args.events / elapsed
        print(
            f"ingested {totals['accepted']:,} events ({totals['duplicates']} duplicates, "
            f"{totals['rejected']} rejected) in {elapsed:.1f}s: {rate:,.0f} events/s "
            f"({args.workers} gunicorn workers, {args.concurrency} client threads)"
        )
        app_cpu, db_cpu = app_after - app_before, db_after - db_before
        per_cpu = args.events / max(app_cpu + db_cpu, 1e-9)
        print(
            f"server CPU: gunicorn {app_cpu:.1f}s + PostgreSQL backends {db_cpu:.1f}s, "
            f"{1e6 / per_cpu:.0f} us per event ({per_cpu:,.0f} events per CPU-second); "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
            "(wall time beyond the CPU time is waiting: for CPU held by other processes, or I/O)"
        )
        replay_time, replay = post_all(args, token, batches[:1])
        print(
            f"replayed one batch: {replay['accepted']} accepted, {replay['duplicates']:,} "
            f"duplicates in {replay_time:.2f}s"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    from content_modules.affinity.models import HCP, EngagementEvent

    stored = EngagementEvent.objects.count()
    print(f"rows stored: {stored:,} events, {HCP.objects.count():,} HCPs")
    expected = args.events + 200 * args.workers  # and the warm-up batches
    if stored != expected or totals["accepted"] != args.events:
        raise SystemExit("MISMATCH: stored rows differ from the events sent")
    print(f"target 5,000 events/s: {'met' if rate >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    main()
