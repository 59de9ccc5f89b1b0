"""Affinity benchmark: load the synthetic world through the API, train, score against the oracle.

    .venv/bin/python bench/affinity_bench.py [--hcps 3000] [--modules 400] [--db h6_affinity_bench]

Creates (drops first) a PostgreSQL database, migrates it, loads HCPs and
events through POST /api/v1/hcps/bulk and POST /api/v1/events, embeds the
modules with the real model, trains the model and its no-text ablation, and
prints NDCG@5 against the oracle ranking (true probabilities as gains) for
warm and cold HCPs beside the baselines. Then times score_versions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def fresh_database(name: str, server: str) -> str:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contentapp.settings")
    os.environ.setdefault("ENGINE_THROTTLE_RATE", "")  # measure serving, not the throttle
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load_world(world, *, chunk: int = 10_000) -> dict:
    """Create the modules (approved), then HCPs and events through the REST API."""
    from datetime import timedelta

    from django.contrib.auth.models import Group, User
    from django.utils import timezone
    from rest_framework.test import APIClient

    from content_modules.accounts.roles import Role
    from content_modules.accounts.tokens import token_issue
    from content_modules.affinity.embeddings import embed_versions
    from content_modules.library.models import Brand, Channel, Market, ModuleVersion, Tag
    from content_modules.library.services import VersionContent, module_create

    author = User.objects.create_user("bench-author", password="x" * 20)
    author.groups.add(Group.objects.get(name=Role.AUTHOR))
    engine = User.objects.create_user("bench-engine", password="x" * 20)
    engine.groups.add(Group.objects.get(name=Role.ENGINE))
    brand, _ = Brand.objects.get_or_create(slug="benchzen", defaults={"name": "BenchZen"})
    market, _ = Market.objects.get_or_create(code="UK", defaults={"name": "United Kingdom"})

    def tag(kind: str, slug: str) -> Tag:
        return Tag.objects.get_or_create(kind=kind, slug=slug, defaults={"label": slug})[0]

    channels = list(Channel.objects.filter(slug__in=["email", "web", "rep_email"]))
    # Embed once in a batch at the end instead of one eager task per new module.
    from content_modules.library.signals import version_content_changed

    version_content_changed.disconnect(dispatch_uid="affinity.embed_version_on_change")
    version_ids, module_ids = [], []
    t0 = time.perf_counter()
    for m in world.modules:
        version = module_create(
            actor=author,
            brand=brand,
            market=market,
            content=VersionContent(
                title=m.title,
                headline=m.headline,
                body=m.body,
                key_message=m.key_message,
                call_to_action=m.call_to_action,
                message=tag("message", m.message),
                tonality=tag("tonality", m.tonality),
                format=tag("format", m.format),
                themes=[tag("theme", t) for t in m.themes],
                channels=channels,
            ),
        )
        version_ids.append(version.pk)
        module_ids.append(version.module_id)
    # Approval is the review workflow's business; the world's content was approved
    # before its first delivery, so the approval time is set to before the log starts.
    ModuleVersion.objects.filter(pk__in=version_ids).update(
        status="approved", approved_at=timezone.now() - timedelta(days=400)
    )
    embed_versions(version_ids)
    print(
        f"modules created, approved and embedded: {len(version_ids)} "
        f"in {time.perf_counter() - t0:.1f}s"
    )

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=engine, name='bench')[1]}")
    t0 = time.perf_counter()
    hcps = [
        {
            "external_id": h.external_id,
            "specialty": h.specialty,
            "segment": h.segment,
            "region": h.region,
            "preferred_channel": h.preferred_channel,
        }
        for h in world.hcps
    ]
    for start in range(0, len(hcps), chunk):
        r = client.post("/api/v1/hcps/bulk", {"hcps": hcps[start : start + chunk]}, format="json")
        assert r.status_code == 200 and not r.json()["rejected"], r.content[:500]
    print(f"HCPs via API: {len(hcps)} in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    accepted = 0
    for start in range(0, len(world.events), chunk):
        batch = [
            dict(e, module=module_ids[e["module"]]) for e in world.events[start : start + chunk]
        ]
        r = client.post("/api/v1/events", {"events": batch}, format="json")
        assert r.status_code in (200, 201, 202) and not r.json()["rejected"], r.content[:500]
        accepted += r.json()["accepted"]
    elapsed = time.perf_counter() - t0
    print(f"events via API: {accepted} in {elapsed:.1f}s ({accepted / elapsed:,.0f} events/s)")
    return {"version_ids": version_ids, "module_ids": module_ids}


def oracle_ndcg(
    scores: np.ndarray, truth: np.ndarray, rng: np.random.Generator, k: int = 5
) -> np.ndarray:
    """NDCG@k per HCP of a score matrix against the true probabilities (ties broken at random)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    tiebreak = rng.random(scores.shape)
    out = np.zeros(len(scores))
    for i in range(len(scores)):
        order = np.lexsort((tiebreak[i], -scores[i]))[:k]
        ideal = np.sort(truth[i])[::-1][:k]
        out[i] = (truth[i, order] * discounts).sum() / (ideal * discounts).sum()
    return out


def score_matrix(model, ds, history, hcp_rows, item_rows, channel_codes) -> np.ndarray:
    from content_modules.affinity.learning.evaluation import model_scores
    from content_modules.affinity.learning.features import Pairs

    n, m = len(hcp_rows), len(item_rows)
    pairs = Pairs(
        np.repeat(hcp_rows, m),
        np.tile(item_rows, n),
        np.zeros(n * m),
        np.zeros(n * m, np.float32),
        np.repeat(channel_codes, m).astype(np.int16),
    )
    return model_scores(model, pairs, ds, history).reshape(n, m)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hcps", type=int, default=3000)
    parser.add_argument("--modules", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", default="h6_affinity_bench")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--eval-hcps", type=int, default=1000, help="warm and cold HCPs scored each"
    )
    parser.add_argument("--reuse", action="store_true", help="Reuse an earlier run's database.")
    args = parser.parse_args()

    if args.reuse:
        setup_django(f"{args.server}/{args.db}")
    else:
        setup_django(fresh_database(args.db, args.server))
    import world as world_mod

    world = world_mod.generate(n_modules=args.modules, n_hcps=args.hcps, seed=args.seed)
    n_cold = sum(h.cold for h in world.hcps)
    print(
        f"world: {len(world.modules)} modules, {len(world.hcps)} HCPs ({n_cold} cold), "
        f"{len(world.events)} events"
    )
    if args.reuse:
        # The world is deterministic for a seed; modules were created in world order.
        from content_modules.library.models import ModuleVersion

        rows = list(ModuleVersion.objects.order_by("id").values_list("id", "module_id"))
        ids = {"version_ids": [r[0] for r in rows], "module_ids": [r[1] for r in rows]}
    else:
        ids = load_world(world)

    from content_modules.affinity.learning import scoring, training
    from content_modules.affinity.learning.evaluation import baseline_scores
    from content_modules.affinity.learning.features import Pairs, Params, compute_history
    from content_modules.affinity.models import HCP

    ds = training.load_dataset()
    item_rows = ds.items.rows(np.array(ids["version_ids"]))
    pk_by_external = dict(HCP.objects.values_list("external_id", "pk"))
    hcp_pks = np.array([pk_by_external[h.external_id] for h in world.hcps])
    hcp_rows = ds.hcps.rows(hcp_pks)
    rng = np.random.default_rng(args.seed)
    cold_idx = np.flatnonzero([h.cold for h in world.hcps])
    warm_idx = np.flatnonzero([not h.cold for h in world.hcps])
    cold_idx = rng.choice(cold_idx, min(args.eval_hcps, len(cold_idx)), replace=False)
    warm_idx = rng.choice(warm_idx, min(args.eval_hcps, len(warm_idx)), replace=False)
    channel_index = ds.vocab.index("channel")
    channels = np.array([channel_index.get(h.preferred_channel, -1) for h in world.hcps])

    results: dict[str, dict[str, float]] = {}
    fitted = {}
    for name, params in (("model", Params()), ("model without text", Params(text_features=False))):
        t0 = time.perf_counter()
        model = training.fit(ds, params)
        fitted[name] = model
        print(
            f"fit {name}: {time.perf_counter() - t0:.1f}s  "
            f"calibration {model.metrics.get('calibration')}"
        )
        history = compute_history(
            training.event_pairs(ds),
            ds.items,
            ds.hcps,
            ds.vocab,
            float(ds.events["t"].max()) + 1.0,
            params.half_life_days,
            params.taste_shrink,
        )
        results[name] = {}
        for label, idx in (("warm", warm_idx), ("cold", cold_idx)):
            s = score_matrix(model, ds, history, hcp_rows[idx], item_rows, channels[idx])
            results[name][label] = float(oracle_ndcg(s, world.truth[idx], rng).mean())

    history = compute_history(
        training.event_pairs(ds),
        ds.items,
        ds.hcps,
        ds.vocab,
        float(ds.events["t"].max()) + 1.0,
        45.0,
        3.0,
    )
    for label, idx in (("warm", warm_idx), ("cold", cold_idx)):
        n, m = len(idx), len(item_rows)
        pairs = Pairs(
            np.repeat(hcp_rows[idx], m),
            np.tile(item_rows, n),
            np.zeros(n * m),
            np.zeros(n * m, np.float32),
            np.repeat(channels[idx], m).astype(np.int16),
        )
        for name, s in baseline_scores(pairs, ds, history, args.seed).items():
            results.setdefault(name, {})[label] = float(
                oracle_ndcg(s.reshape(n, m), world.truth[idx], rng).mean()
            )
        results.setdefault("oracle", {})[label] = 1.0

    print()
    print(
        f"NDCG@5 against the oracle ranking ({len(warm_idx)} warm, {len(cold_idx)} cold HCPs; "
        f"{len(item_rows)} candidate modules each)"
    )
    print(f"{'method':<24}{'warm':>10}{'cold':>10}{'warm vs grp-pop':>18}{'cold vs grp-pop':>18}")
    ref = results["group_popularity"]
    for name in (
        "model",
        "model without text",
        "group_popularity",
        "popularity",
        "random",
        "oracle",
    ):
        r = results[name]
        print(
            f"{name:<24}{r['warm']:>10.4f}{r['cold']:>10.4f}"
            f"{(r['warm'] / ref['warm'] - 1) * 100:>+17.1f}%"
            f"{(r['cold'] / ref['cold'] - 1) * 100:>+17.1f}%"
        )
    ok = all(results["model"][k] >= 1.10 * ref[k] for k in ("warm", "cold"))
    text_helps = all(
        results["model"][k] > results["model without text"][k] for k in ("warm", "cold")
    )
    print(f"\ntarget (>= +10% over group popularity, warm and cold): {'MET' if ok else 'NOT MET'}")
    print(f"text features help (model > ablation, warm and cold): {'YES' if text_helps else 'NO'}")

    # Serving speed: the stored, active model through score_versions.
    from content_modules.affinity.training_runs import affinity_model_train

    stored = affinity_model_train(actor=None)
    scoring.reset_cache()
    hcp = HCP.objects.get(pk=int(hcp_pks[warm_idx[0]]))
    candidates = (ids["version_ids"] * (1000 // len(ids["version_ids"]) + 1))[:1000]
    scoring.score_versions(hcp, candidates)  # load the model and the item table
    serving = scoring.active_model()
    rows = serving.item_rows(candidates)
    names = (
        "score_versions with drivers",
        "score_versions, no drivers",
        "serving face, no explanations",
        "design matrix (training path)",
    )
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}

    def timed(name, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall[name].append(time.perf_counter() - w0)
        cpu[name].append(time.process_time() - c0)

    for _ in range(30):
        timed(names[0], lambda: scoring.score_versions(hcp, candidates))
        timed(names[1], lambda: scoring.score_versions(hcp, candidates, with_drivers=False))
        timed(names[2], lambda: serving.score(hcp, candidates))
        ctx = serving.broadcast(serving.hcp_profile(hcp, None, time.time()), rows)
        timed(names[3], lambda: serving.evaluate(ctx))  # noqa: B023 - called at once
    print(
        f"\nscoring 1,000 candidates for one HCP with {stored.model_version} "
        f"(median of 30; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):"
    )
    print(f"  {'':<36}{'wall ms':>10}{'CPU ms':>10}")
    for name in names:
        print(
            f"  {name:<36}{np.median(wall[name]) * 1000:10.2f}{np.median(cpu[name]) * 1000:10.2f}"
        )


if __name__ == "__main__":
    main()
