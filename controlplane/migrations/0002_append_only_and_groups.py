"""Database-level guarantees: the audit log is append-only and revisions are immutable.

The app may connect as a superuser, so GRANTs prove nothing; triggers refuse the statements.
Also creates the "operator" and "viewer" groups the dashboard roles use.
"""

from django.db import migrations

TRIGGERS = """
CREATE OR REPLACE FUNCTION routeplane_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'routeplane: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_append_only
    BEFORE UPDATE OR DELETE ON controlplane_auditentry
    FOR EACH ROW EXECUTE FUNCTION routeplane_refuse_change();

CREATE TRIGGER revision_immutable
    BEFORE UPDATE ON controlplane_configrevision
    FOR EACH ROW EXECUTE FUNCTION routeplane_refuse_change();

CREATE TRIGGER flag_state_immutable
    BEFORE UPDATE ON controlplane_flagstate
    FOR EACH ROW EXECUTE FUNCTION routeplane_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS flag_state_immutable ON controlplane_flagstate;
DROP TRIGGER IF EXISTS revision_immutable ON controlplane_configrevision;
DROP TRIGGER IF EXISTS audit_append_only ON controlplane_auditentry;
DROP FUNCTION IF EXISTS routeplane_refuse_change();
"""


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ("operator", "viewer"):
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("controlplane", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunSQL(TRIGGERS, DROP),
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
