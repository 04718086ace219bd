# Guardrails moved to the tracking app (its check reads events). The table stays
# controlplane_guardrail: only Django's model state moves, no data is copied.
# The beat schedules follow their tasks: the guardrail check to tracking, stale clients here.

from django.db import migrations


def rename_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="controlplane.tasks.check_guardrails").update(
        name="tracking: check guardrails", task="tracking.tasks.check_guardrails"
    )
    PeriodicTask.objects.filter(task="tracking.tasks.detect_stale_clients").update(
        name="controlplane: stale clients", task="controlplane.tasks.detect_stale_clients"
    )


def restore_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="tracking.tasks.check_guardrails").update(
        name="controlplane: check guardrails", task="controlplane.tasks.check_guardrails"
    )
    PeriodicTask.objects.filter(task="controlplane.tasks.detect_stale_clients").update(
        name="tracking: stale clients", task="tracking.tasks.detect_stale_clients"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("controlplane", "0003_guardrail"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Guardrail")],
            database_operations=[],
        ),
        migrations.RunPython(rename_schedules, restore_schedules),
    ]
