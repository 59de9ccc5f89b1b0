"""Closed loop: an A/B test of the model against random, driven through the API.

    .venv/bin/python bench/closed_loop.py [--hcps 2000] [--modules 120] [--rounds 3]

On its own PostgreSQL database it loads the synthetic world of ``bench/world.py``
(modules approved and embedded, HCPs and their logged history through the
API), trains the model through the gate, and starts an experiment through
``POST /api/v1/experiments`` (arm A: random, arm B: the model, no holdout).
Then, for ``--rounds`` rounds, every HCP asks ``POST /api/v1/recommendations``
(k=1); the bench simulates the HCP's response from the world's truth (a
click with the true probability of the module shown) and posts the delivered
and clicked events back through ``POST /api/v1/events`` with the
recommendation id. It checks:

1. the per-arm deliveries and clicks that ``GET /api/v1/experiments/{id}``
   reports equal what was simulated, and each arm's rate interval covers the
   arm's expected rate under the truth (the mean true probability of what it
   showed);
2. the reported lift's interval covers the truth's expected lift;
3. the doubly robust / IPS estimate of the model policy's click rate from the
   random arm's logs alone (``affinity.learning.ope``; the random arm's
   propensity is 1/n) covers the model arm's true expected rate.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from affinity_bench import fresh_database, load_world, setup_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hcps", type=int, default=2000)
    parser.add_argument("--modules", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default="closed_loop_bench")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    setup_django(fresh_database(args.db, args.server))
    import world as world_mod
    from django.contrib.auth.models import Group, User
    from django.utils import timezone
    from rest_framework.test import APIClient

    from content_modules.accounts.roles import Role
    from content_modules.accounts.tokens import token_issue
    from content_modules.affinity.learning import ope
    from content_modules.affinity.models import AffinityModel, ModelStatus
    from content_modules.affinity.training_runs import affinity_model_train

    world = world_mod.generate(n_modules=args.modules, n_hcps=args.hcps, seed=args.seed)
    loaded = load_world(world)
    module_index = {m: i for i, m in enumerate(loaded["module_ids"])}
    t0 = time.perf_counter()
    model = affinity_model_train(actor=None)
    print(
        f"model {model.model_version}: {model.status} ({model.reason}) "
        f"in {time.perf_counter() - t0:.0f}s"
    )
    if not model.is_active:
        AffinityModel.objects.filter(pk=model.pk).update(
            is_active=True, status=ModelStatus.FORCED, override_reason="closed-loop bench"
        )

    admin = User.objects.create_user("bench-admin", password="x" * 20, is_staff=True)
    admin.groups.add(Group.objects.get(name=Role.ADMIN))
    admin_client = APIClient()
    admin_client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=admin, name='b')[1]}")
    engine = User.objects.get(username="bench-engine")
    engine_client = APIClient()
    engine_client.credentials(
        HTTP_AUTHORIZATION=f"Token {token_issue(user=engine, name='loop')[1]}"
    )
    r = admin_client.post(
        "/api/v1/experiments",
        {
            "name": "closed loop: random vs model",
            "arms": [{"name": "A", "policy": "random"}, {"name": "B", "policy": "model"}],
            "holdout": 0.0,
            "channel": "email",
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    experiment_id = r.json()["id"]

    rng = np.random.default_rng(args.seed)
    simulated = {"A": [0, 0], "B": [0, 0]}  # deliveries, clicks
    expected = {"A": [], "B": []}  # true probability of each shown module
    random_log: list[tuple[int, int, float, int]] = []  # (hcp row, shown index, propensity, click)
    t0 = time.perf_counter()
    now = timezone.now()
    for round_ in range(args.rounds):
        events = []
        for row, hcp in enumerate(world.hcps):
            body = engine_client.post(
                "/api/v1/recommendations",
                {"hcp": hcp.external_id, "channel": "email", "k": 1},
                format="json",
            ).json()
            arm = (body.get("experiment") or {}).get("arm")
            if arm not in simulated or not body["items"]:
                continue
            item = body["items"][0]
            j = module_index[item["module"]]
            p = float(world.truth[row, j])
            click = int(rng.random() < p)
            simulated[arm][0] += 1
            simulated[arm][1] += click
            expected[arm].append(p)
            if arm == "A":
                random_log.append((row, j, float(item["propensity"]), click))
            when = (now + timedelta(minutes=round_)).isoformat()
            for kind in ("delivered",) + (("clicked",) if click else ()):
                events.append(
                    {
                        "event_id": str(uuid.uuid4()),
                        "hcp": hcp.external_id,
                        "module": item["module"],
                        "version": item["version_id"],
                        "type": kind,
                        "occurred_at": when,
                        "channel": "email",
                        "recommendation_id": body["recommendation_id"],
                    }
                )
        for start in range(0, len(events), 5000):
            r = engine_client.post(
                "/api/v1/events", {"events": events[start : start + 5000]}, format="json"
            )
            assert r.status_code in (200, 201, 202) and not r.json()["rejected"], r.content[:300]
    print(f"{args.rounds} rounds x {len(world.hcps)} HCPs in {time.perf_counter() - t0:.0f}s")

    results = admin_client.get(f"/api/v1/experiments/{experiment_id}").json()
    arms = {a["name"]: a for a in results["arms"]}
    ok = True
    print(
        f"\n{'arm':4} {'deliveries':>10} {'clicks':>7} {'rate':>7} "
        f"{'95% interval':>18} {'true rate':>9}"
    )
    for name in ("A", "B"):
        a, (n, c) = arms[name], simulated[name]
        true_rate = float(np.mean(expected[name]))
        lo, hi = a["rate_ci95"]
        covers = lo <= true_rate <= hi
        same = (a["deliveries"], a["clicks"]) == (n, c)
        ok &= covers and same
        print(
            f"{name:4} {a['deliveries']:>10} {a['clicks']:>7} {a['rate']:>7.4f} "
            f"[{lo:.4f}, {hi:.4f}] {true_rate:>9.4f}  counts {'match' if same else 'DIFFER'}, "
            f"interval {'covers' if covers else 'MISSES'} the truth"
        )
    true_lift = float(np.mean(expected["B"]) - np.mean(expected["A"]))
    lo, hi = arms["B"]["lift_ci95"]
    covers = lo <= true_lift <= hi
    ok &= covers
    print(
        f"lift B - A: {arms['B']['lift']:.4f} [{lo:.4f}, {hi:.4f}], truth {true_lift:.4f}: "
        f"{'covered' if covers else 'MISSED'}; verdict: {results['verdict']}"
    )

    # Off-policy: the model's click rate from the random arm's logs alone. The target
    # policy shows the model's favourite; the random arm showed it with propensity 1/n.
    from content_modules.affinity.learning import serving
    from content_modules.affinity.models import HCP
    from content_modules.delivery import catalogue as catalogue_mod

    cat = catalogue_mod.current()
    idx = cat.select(today=catalogue_mod.today(), channel="email")
    rewards, props, target, q_logged, q_target = [], [], [], [], []
    hcp_rows = {h.external_id: h for h in HCP.objects.all()}
    for row, j, propensity, click in random_log:
        hcp = hcp_rows[world.hcps[row].external_id]
        scored = serving.score(hcp, cat.version_ids[idx], channel="email")
        probs = scored.probabilities
        modules = cat.module_ids[idx][scored.keep]
        best = int(np.argmax(probs))
        shown = int(np.flatnonzero(modules == loaded["module_ids"][j])[0])
        rewards.append(click)
        props.append(propensity)
        target.append(1.0 if shown == best else 0.0)
        q_logged.append(float(probs[shown]))
        q_target.append(float(probs[best]))
    estimate = ope.estimate(
        np.array(rewards), np.array(props), np.array(target), np.array(q_logged), np.array(q_target)
    )
    model_true = float(np.mean(expected["B"]))
    for name in ("ips", "dr"):
        lo, hi = estimate[f"{name}_ci95"]
        covers = lo <= model_true <= hi
        ok &= covers
        print(
            f"off-policy {name.upper()} of the model from the random arm: {estimate[name]:.4f} "
            f"[{lo:.4f}, {hi:.4f}] (effective n {estimate['effective_n']:.0f} of "
            f"{estimate['n']}); model arm's true rate {model_true:.4f}: "
            f"{'covered' if covers else 'MISSED'}"
        )
    print("\nALL CHECKS PASS" if ok else "\nSOME CHECKS FAIL")


if __name__ == "__main__":
    main()
