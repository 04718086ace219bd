"""Data: the shipped price file, the rollup watermark row, and the Celery beat schedules.

Schedules live in django-celery-beat's tables so operators see (and can pause) them in admin.
"""

from django.db import migrations

from tracking.reference_data import SCHEDULES


def seed(apps, schema_editor):
    from tracking.reference_data import ensure_reference_data

    ensure_reference_data(apps)


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=list(SCHEDULES)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0002_latency_histogram_sql"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
