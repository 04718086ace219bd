"""The audit log refuses TRUNCATE too (row triggers never see it): a statement-level trigger.

The one way past it is the session setting `routeplane.allow_audit_truncate = on`, which only
the test suite's database flush sets (tests/conftest.py); like DROP TRIGGER it is a deliberate
act, never something the app does.
"""

from django.db import migrations

TRIGGER = """
CREATE OR REPLACE FUNCTION routeplane_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('routeplane.allow_audit_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'routeplane: % is append-only (TRUNCATE refused)', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_no_truncate
    BEFORE TRUNCATE ON controlplane_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION routeplane_refuse_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_no_truncate ON controlplane_auditentry;
DROP FUNCTION IF EXISTS routeplane_refuse_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [("controlplane", "0004_move_guardrail_to_tracking")]

    operations = [migrations.RunSQL(TRIGGER, DROP)]
