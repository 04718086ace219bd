from django.db import migrations

from controlplane.reference_data import EXPIRE_CLIENTS_SCHEDULE


def schedule(apps, schema_editor):
    from controlplane.reference_data import ensure_reference_data

    ensure_reference_data(apps)


def unschedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=EXPIRE_CLIENTS_SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("controlplane", "0006_change_requests_and_scheduled_changes"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
