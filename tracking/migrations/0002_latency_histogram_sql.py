"""SQL helpers for latency histograms: a per-row aggregate and an element-wise array sum.

Bucket i counts latencies in (1.2**(i-1), 1.2**i] ms (bucket 0: <= 1 ms; bucket 63: the rest),
matching tracking.models.LATENCY_BUCKET_RATIO / LATENCY_BUCKETS.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION tracking_hist_step(state bigint[], latency double precision)
RETURNS bigint[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE b int;
BEGIN
    IF latency IS NULL THEN
        RETURN state;
    END IF;
    b := least(63, greatest(0, ceil(ln(greatest(latency, 1.0)) / ln(1.2))))::int;
    state[b + 1] := state[b + 1] + 1;
    RETURN state;
END $$;

CREATE OR REPLACE FUNCTION tracking_hist_merge(a bigint[], b bigint[])
RETURNS bigint[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF a IS NULL THEN RETURN b; END IF;
    IF b IS NULL THEN RETURN a; END IF;
    FOR i IN 1 .. 64 LOOP
        a[i] := a[i] + b[i];
    END LOOP;
    RETURN a;
END $$;

CREATE AGGREGATE tracking_latency_hist(double precision) (
    SFUNC = tracking_hist_step, STYPE = bigint[],
    INITCOND = '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}',
    COMBINEFUNC = tracking_hist_merge, PARALLEL = SAFE
);

CREATE AGGREGATE tracking_hist_sum(bigint[]) (
    SFUNC = tracking_hist_merge, STYPE = bigint[],
    COMBINEFUNC = tracking_hist_merge, PARALLEL = SAFE
);
"""

DROP = """
DROP AGGREGATE IF EXISTS tracking_hist_sum(bigint[]);
DROP AGGREGATE IF EXISTS tracking_latency_hist(double precision);
DROP FUNCTION IF EXISTS tracking_hist_merge(bigint[], bigint[]);
DROP FUNCTION IF EXISTS tracking_hist_step(bigint[], double precision);
"""


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
