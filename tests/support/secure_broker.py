"""The broker the tests use by default is the one a site runs (issue 12): `MosquittoBroker.secured`, i.e. TLS
with a CA made for the test, a login per edge node (user name = node name) and one for the station, and the
ACL of configs/mosquitto/acl, so a node may publish only under its own topics.  A test names the nodes it
runs; edge configs take `broker.client_settings(node)`, the station's `broker.client_settings(STATION_USER)`,
and a raw paho client comes from `paho_client(broker, user)`.

The helpers also accept an anonymous `MosquittoBroker()`: the few tests about plain MQTT on purpose use one.
"""

from __future__ import annotations

import ssl
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from smarteye.sim.broker import STATION_USER, MosquittoBroker

# The nodes of the ground station's tests (one broker per package, so it knows every node a test there
# publishes as); their ACL takes any first topic level before /v1, as each test has its own prefix.
TEST_NODES: tuple[str, ...] = ("node1", "node2", "n1", "n2", "e1", "site", "site-a", "site-b", "drone-1")
ANY_TEST_PREFIX = "+/v1"


def mqtt_settings(broker: MosquittoBroker, user: str = STATION_USER) -> dict[str, Any]:
    """The `mqtt:` settings with which `user` connects (only the URL on an anonymous broker)."""
    return broker.client_settings(user) if broker.users else {"url": broker.url}


def cli_login(broker: MosquittoBroker, user: str, env_prefix: str = "SMARTEYE_EDGE_") -> tuple[str, dict[str, str]]:
    """What `smarteye edge --mqtt URL` (or, with smarteye.cli's STATION_ENV_PREFIX, `smarteye ground-station run
    --mqtt URL`)
    needs on the secured broker: the URL with `user`'s login (moved out of the URL on parsing) and the
    environment naming the test CA."""
    url = f"mqtts://{user}:{broker.users[user]}@{broker.host}:{broker.port}"
    return url, {f"{env_prefix}MQTT__TLS__CA_FILE": str(broker.ca_file)}


def paho_client(
    broker: MosquittoBroker, user: str = STATION_USER, client_id: str | None = None, **kwargs: Any
) -> mqtt.Client:
    """A paho client, not yet connected, that logs in as `user` and verifies the broker's certificate against
    the test CA (plain and anonymous on an anonymous broker).  `kwargs` go to `mqtt.Client`."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"{user}-{uuid.uuid4().hex[:8]}",
                         **kwargs)  # fmt: skip
    if broker.users:
        if user not in broker.users:
            raise KeyError(f"the broker has no user {user!r} (its users: {', '.join(sorted(broker.users))}): "
                           "name the node when starting it")  # fmt: skip
        client.username_pw_set(user, broker.users[user])
    if broker.ca_file is not None:
        client.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_file)))
    return client


def secured_test_broker(**kwargs: Any) -> MosquittoBroker:
    """A secured broker (not started) for TEST_NODES under any `<name>/v1` prefix: the ground station's tests."""
    return MosquittoBroker.secured(TEST_NODES, prefix=ANY_TEST_PREFIX, **kwargs)
