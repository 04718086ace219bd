"""Data: the dynamic-threshold beat schedule (tracking.reference_data.SCHEDULES)."""

from django.db import migrations


def seed(apps, schema_editor):
    from tracking.reference_data import ensure_reference_data

    ensure_reference_data(apps)


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="tracking: dynamic threshold"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("tracking", "0010_winrate_histogram")]

    operations = [migrations.RunPython(seed, unseed)]
