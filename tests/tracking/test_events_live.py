"""A client killed mid-batch, then retried against a live server: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import orjson
import pytest

from tests.tracking.conftest import make_event
from tracking.models import Event

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENT = textwrap.dedent(
    """
    import http.client, json, sys
    from urllib.parse import urlsplit
    url, key, path = sys.argv[1:4]
    batches = json.load(open(path))
    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.netloc, timeout=30)
    for index, batch in enumerate(batches):
        conn.request("POST", "/api/v1/events", body=json.dumps({"events": batch}),
                     headers={"Authorization": "Bearer " + key,
                              "Content-Type": "application/json"})
        conn.getresponse().read()
        print(index, flush=True)
    """
)


def test_client_killed_mid_batch__retry_stores_each_event_once(
    live_server, router, router_key, router_api, tmp_path
):
    batches = [[make_event(prompt_tokens=i) for i in range(500)] for _ in range(12)]
    path = tmp_path / "batches.json"
    path.write_text(json.dumps(batches))
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, live_server.url, router_key, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout.readline().strip() == "0"  # one batch answered, more in flight
    os.kill(client.pid, signal.SIGKILL)
    client.wait()
    client.stdout.close()
    # The server may still be finishing the batch the client was sending when it died.
    assert Event.objects.filter(router=router).count() < 6000

    accepted = duplicates = 0
    for batch in batches:  # the retry: every batch again, from the start
        body = router_api.post(
            "/api/v1/events", orjson.dumps({"events": batch}), content_type="application/json"
        ).json()
        accepted += body["accepted"]
        duplicates += body["duplicates"]

    assert Event.objects.filter(router=router).count() == 6000
    assert accepted + duplicates == 6000
    assert duplicates >= 500  # at least the batch acknowledged before the kill
    assert duplicates % 500 == 0  # whole batches: a batch is stored entirely or not at all
