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
3. the IPS and doubly robust estimates of the model policy's click rate from the
   random arm's logs alone (``affinity.learning.ope``; the random arm's
   propensity is 1/n) cover the model arm's true expected rate.

The target policy of check 3 is the model arm's own rule (greedy on the active
model's scores, frequency-capped modules last), applied at each random-arm
request to that HCP's history at that moment. It is checked on the first round
only: from the second round on, each arm's HCPs carry the deliveries their own
arm made (the model arm's favourite is capped after it was shown), so the model
policy at a random-arm HCP's context is no longer the policy the model arm ran.
The estimate is also checked against that policy's true value on the random
arm's contexts (what an off-policy estimate estimates), known from the truth.
Its effective sample is about (random-arm requests in round 1) / (modules):
``--hcps 10000 --modules 60`` gives ~80.
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

    from content_modules.affinity.learning import serving
    from content_modules.delivery import catalogue as catalogue_mod
    from content_modules.delivery import services as delivery
    from content_modules.delivery.policy import choose

    def model_rule(external_id: str, shown_module: int) -> tuple[int, float, float]:
        """What the model arm would show this HCP now (its module), and the model's
        click probability of the shown and of that module (the DR reward model)."""
        snapshot = delivery._snapshot(external_id)
        cat = catalogue_mod.current(snapshot.generation)
        idx = cat.select(today=catalogue_mod.today(), channel="email")
        scored = serving.score(
            snapshot.hcp,
            cat.version_ids[idx],
            channel="email",
            events=snapshot.events,
            head=snapshot.model_head,
        )
        modules = cat.module_ids[idx][scored.keep]
        capped = np.isin(
            modules, np.fromiter(delivery._recently_delivered(snapshot.events), dtype=np.int64)
        )
        pick = choose(
            scored.probabilities,
            [np.ones(len(modules), dtype=bool)],
            capped,
            explore=False,
            epsilon=0.0,
            rng=np.random.default_rng(0),
        )[0]
        assert pick is not None
        shown = int(np.flatnonzero(modules == shown_module)[0])
        probs = scored.probabilities
        return int(modules[pick.index]), float(probs[shown]), float(probs[pick.index])

    rng = np.random.default_rng(args.seed)
    simulated = {"A": [0, 0], "B": [0, 0]}  # deliveries, clicks
    expected = {"A": [], "B": []}  # true probability of each shown module
    # Round 1 of the random arm: (hcp row, shown, propensity, click, target, q_shown, q_target)
    random_log: list[tuple[int, int, float, int, int, float, float]] = []
    expected_first: list[float] = []  # the model arm's true probabilities in round 1
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
            if arm == "B" and round_ == 0:
                expected_first.append(p)
            if arm == "A" and round_ == 0:
                target, q_shown, q_target = model_rule(hcp.external_id, item["module"])
                random_log.append(
                    (row, j, float(item["propensity"]), click, target, q_shown, q_target)
                )
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

    # Off-policy: the model's click rate from the random arm's round-1 logs alone.
    rewards = np.array([r[3] for r in random_log], dtype=np.float64)
    props = np.array([r[2] for r in random_log])
    target = np.array([1.0 if loaded["module_ids"][r[1]] == r[4] else 0.0 for r in random_log])
    estimate = ope.estimate(
        rewards,
        props,
        target,
        np.array([r[5] for r in random_log]),
        np.array([r[6] for r in random_log]),
    )
    policy_true = float(np.mean([world.truth[r[0], module_index[r[4]]] for r in random_log]))
    model_true = float(np.mean(expected_first))
    print(
        f"\nround 1: model arm's true rate {model_true:.4f} over {len(expected_first)} requests; "
        f"the model rule's true value on the random arm's {len(random_log)} contexts "
        f"{policy_true:.4f}"
    )
    for name in ("ips", "dr"):
        lo, hi = estimate[f"{name}_ci95"]
        covers = lo <= model_true <= hi
        covers_policy = lo <= policy_true <= hi
        ok &= covers and covers_policy
        print(
            f"off-policy {name.upper()} of the model from the random arm: {estimate[name]:.4f} "
            f"[{lo:.4f}, {hi:.4f}] (effective n {estimate['effective_n']:.0f} of "
            f"{estimate['n']}); model arm's true rate: "
            f"{'covered' if covers else 'MISSED'}; the rule's true value: "
            f"{'covered' if covers_policy else 'MISSED'}"
        )
    print("\nALL CHECKS PASS" if ok else "\nSOME CHECKS FAIL")


if __name__ == "__main__":
    main()
