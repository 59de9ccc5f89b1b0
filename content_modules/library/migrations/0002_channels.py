from django.db import migrations

CHANNELS = [
    ("email", "Email"),
    ("rep_email", "Rep-triggered email"),
    ("web", "Web"),
    ("rep_visit", "Rep visit"),
    ("webinar", "Webinar"),
]


def create_channels(apps, schema_editor):
    Channel = apps.get_model("library", "Channel")
    for slug, label in CHANNELS:
        Channel.objects.update_or_create(slug=slug, defaults={"label": label})


class Migration(migrations.Migration):
    dependencies = [("library", "0001_initial")]

    operations = [migrations.RunPython(create_channels, migrations.RunPython.noop)]
