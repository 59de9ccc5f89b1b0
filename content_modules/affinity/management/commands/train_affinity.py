"""python manage.py train_affinity: train and store a model; activate it if it passes the gate."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm  # type: ignore[import-untyped]  # no types-tqdm in the lock

from content_modules.affinity.learning.features import Params
from content_modules.affinity.training_runs import affinity_model_train
from content_modules.errors import DomainError

# Stages the training reports besides one per label window: reading (3),
# calibration check, fit, pooled statistics.
FIXED_STAGES = 6


class Command(BaseCommand):
    help = (
        "Train the affinity model on all events and store it as a new version; it is activated "
        "only if it beats popularity within specialty x segment and the active model."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-activate", action="store_true", help="Gate and store, but do not activate."
        )
        parser.add_argument(
            "--evaluate", action="store_true", help="Also run the offline evaluation."
        )
        parser.add_argument("--max-rows", type=int, default=Params.max_rows)
        parser.add_argument("--no-text", action="store_true", help="Ablation: no text features.")

    def handle(self, *args, **options):
        params = Params(max_rows=options["max_rows"], text_features=not options["no_text"])
        stages = FIXED_STAGES + params.windows
        with tqdm(total=stages, desc="training", unit="step", file=self.stderr._out) as bar:

            def progress(message: str) -> None:
                bar.set_postfix_str(message[:60])
                bar.update(1)

            try:
                stored = affinity_model_train(
                    actor=None,
                    params=params,
                    progress=progress,
                    activate=not options["no_activate"],
                    evaluate=options["evaluate"],
                )
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            bar.update(max(stages - bar.n, 0))
        calibration = stored.metrics.get("calibration", {})
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained {stored.model_version} on {stored.n_events} events "
                f"of {stored.n_hcps} HCPs; "
                f"held-out window AUC {calibration.get('auc', float('nan')):.3f}, "
                f"Brier {calibration.get('brier', float('nan')):.4f}, "
                f"ECE {calibration.get('ece', float('nan')):.4f}"
            )
        )
        verdict = f"gate: {stored.status} ({stored.reason})"
        if stored.is_active:
            self.stdout.write(self.style.SUCCESS(f"{verdict}; now active"))
        else:
            self.stdout.write(self.style.WARNING(f"{verdict}; not activated"))
        if options["evaluate"] and "evaluation" in stored.metrics:
            from .evaluate_affinity import render

            self.stdout.write(render(stored.metrics["evaluation"]))
