"""Issue 12, acceptance 4: the tests run the broker a site runs (`MosquittoBroker.secured`: TLS, a login per node
and for the station, the ACL).  A new test starting a plain `MosquittoBroker(...)` fails here unless it is about
plain MQTT on purpose and says why below."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
# Files that construct a broker by hand, on purpose, with why.
ON_PURPOSE = {
    "edge/outputs/test_mqtt_publisher.py": "credentials in the URL and refused logins; TLS verification with "
    "another CA (the system CAs refuse it)",
    "smarteye/sim/test_secure_broker.py": "the secured set-up itself: the shipped configuration, what it refuses",
    "ground_station/ingest/test_aggregator.py": "never started: only its URL goes into a config",
}
PLAIN_BROKER = re.compile(r"(?<![.\w])MosquittoBroker\(")  # not `MosquittoBroker.secured(`, not a type hint


def test_every_test_broker_is_the_secured_one() -> None:
    plain = {
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.parent.name != "support"
        and path != Path(__file__).resolve()
        and PLAIN_BROKER.search(path.read_text(encoding="utf-8"))
    }
    assert plain - set(ON_PURPOSE) == set(), (
        "start the secured broker (the `secure_broker` fixture, see tests/support/secure_broker.py)"
    )
    assert set(ON_PURPOSE) <= plain, "a file listed as using a plain broker on purpose no longer does: drop it"
