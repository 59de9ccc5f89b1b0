"""python manage.py evaluate_affinity: offline evaluation on the latest 20% of events."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm  # type: ignore[import-untyped]  # no types-tqdm in the lock

from content_modules.affinity.training_runs import affinity_model_evaluate
from content_modules.errors import DomainError

METHODS = (
    ("model", "model"),
    ("random", "random"),
    ("popularity", "global popularity"),
    ("group_popularity", "popularity in specialty x segment"),
    ("tag_regression", "regression on tags x specialty/segment"),
    ("text_regression", "the same plus text, x specialty and HCP"),
    ("model_without_text", "model without text features"),
)


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "   -  "


def render(results: dict) -> str:
    """The evaluation as a plain-text table."""
    lines = [
        f"Model {results.get('model_version', '?')}: "
        f"trained on {results['n_train_events']} events, "
        f"tested on {results['n_test_exposures']} held-out exposures "
        f"(latest {results['holdout_fraction']:.0%} of events; positive rate "
        f"{_fmt(results['test_positive_rate'])})",
        f"{'method':<36}{'AUC':>8}{'NDCG@5':>9}{'recall@5':>10}{'cold NDCG@5':>13}",
    ]
    for key, label in METHODS:
        if key not in results["methods"]:
            continue
        m = results["methods"][key]
        cold = m.get("cold", {}).get("ndcg@5")
        lines.append(
            f"{label:<36}{_fmt(m.get('auc')):>8}{_fmt(m.get('ndcg@5')):>9}"
            f"{_fmt(m.get('recall@5')):>10}{_fmt(cold):>13}"
        )
    cal = results.get("calibration", {})
    lines.append(
        f"calibration on held-out: Brier {_fmt(cal.get('brier'))}, ECE {_fmt(cal.get('ece'))}, "
        f"log loss {_fmt(cal.get('log_loss'))}"
    )
    ope = results.get("off_policy")
    if ope:
        lines.append(
            f"off-policy click rate of the model's top pick over {ope['n']} logged items: "
            f"IPS {_fmt(ope['ips'])}, SNIPS {_fmt(ope['snips'])} "
            f"(logged policy: {_fmt(ope.get('logged_click_rate'))})"
        )
    else:
        lines.append("IPS/SNIPS: no events carry a logged recommendation propensity yet.")
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Hold out the latest 20% of events, report AUC, NDCG@5 and recall@5 for the model and "
        "three baselines (plus IPS/SNIPS where propensities are logged); store with the model."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model-version", help="Evaluate this stored version (default: active)."
        )

    def handle(self, *args, **options):
        with tqdm(total=6, desc="evaluating", unit="step", file=self.stderr._out) as bar:

            def progress(message: str) -> None:
                bar.set_postfix_str(message[:60])
                bar.update(1)

            try:
                results = affinity_model_evaluate(
                    actor=None, model_version=options.get("model_version"), progress=progress
                )
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            bar.update(max(bar.total - bar.n, 0))
        self.stdout.write(render(results))
        self.stdout.write(self.style.SUCCESS(f"Stored with {results['model_version']}."))
