# Guardrails moved here from the controlplane app: model state only, the table
# (controlplane_guardrail) and its rows stay as they are.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("controlplane", "0004_move_guardrail_to_tracking"),
        ("tracking", "0005_daily_rollups"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Guardrail",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("enabled", models.BooleanField(default=False)),
                        ("min_success_rate", models.FloatField(default=0.95)),
                        ("max_fallback_rate", models.FloatField(default=0.25)),
                        ("window_minutes", models.PositiveIntegerField(default=15)),
                        ("min_requests", models.PositiveIntegerField(default=100)),
                        ("last_tripped_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "router",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="guardrail",
                                to="controlplane.router",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "controlplane_guardrail",
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("min_success_rate__gte", 0), ("min_success_rate__lte", 1)
                                ),
                                name="guardrail_success_rate_fraction",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("max_fallback_rate__gte", 0), ("max_fallback_rate__lte", 1)
                                ),
                                name="guardrail_fallback_rate_fraction",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("window_minutes__gte", 1)),
                                name="guardrail_window",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
