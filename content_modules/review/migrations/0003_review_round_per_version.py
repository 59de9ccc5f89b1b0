"""Review rounds are numbered per version (round 1 = a version's first review).

Earlier rows counted every review of the module, so version 2's first review
read "round 2". The stored audit entries keep the number they were written
with (the trail is append-only); the describer says which scheme they used.
"""

from django.db import migrations, models


def renumber_per_version(apps, schema_editor):
    Review = apps.get_model("review", "Review")
    counts: dict[int, int] = {}
    for review in Review.objects.order_by("version_id", "submitted_at", "id").only(
        "pk", "version_id", "round"
    ):
        number = counts.get(review.version_id, 0) + 1
        counts[review.version_id] = number
        if review.round != number:
            Review.objects.filter(pk=review.pk).update(round=number)


def renumber_per_module(apps, schema_editor):
    Review = apps.get_model("review", "Review")
    counts: dict[int, int] = {}
    for review in Review.objects.select_related("version").order_by("submitted_at", "id"):
        module_id = review.version.module_id
        number = counts.get(module_id, 0) + 1
        counts[module_id] = number
        if review.round != number:
            Review.objects.filter(pk=review.pk).update(round=number)


class Migration(migrations.Migration):
    dependencies = [("review", "0002_review_recall")]

    operations = [
        migrations.RunPython(renumber_per_version, renumber_per_module),
        migrations.AddConstraint(
            model_name="review",
            constraint=models.UniqueConstraint(
                fields=("version", "round"), name="review_round_unique_per_version"
            ),
        ),
    ]
