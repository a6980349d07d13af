"""The one module that touches paho-mqtt's private internals (pinned in pyproject.toml; when they
change, tests/ground_station/ingest/test_client.py fails and names what changed).

Why: paho's own receive path does three recv() calls per packet and builds a Properties object, an
MQTTMessage and a debug log line for every PUBLISH, which caps a Python subscriber well below
10,000 messages/s.  `FastClient` serves paho's small reads from one large recv, and hands a QoS-1
PUBLISH without MQTT 5 properties (what edge nodes send) straight to `fast_publish`; everything else
(CONNACK, SUBACK, PINGRESP, PUBLISH with properties or QoS 0/2, ...) goes through paho unchanged.
If the internals are missing it falls back to stock paho (slower, same guarantees) and logs a WARNING.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import MQTTErrorCode

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024  # bytes asked of the socket at once (many PUBLISH packets per recv)
_PUBACK = 0x40
_PUBACK_HEADER = bytes((_PUBACK, 2))  # fixed header, remaining length 2 (the packet id): success, no properties
# The private methods hooked or called, with the leading parameters they are called with.
_METHODS = {
    "_sock_recv": ["self", "bufsize"],
    "_handle_publish": ["self"],
    "_packet_queue": ["self", "command", "packet", "mid", "qos"],
}
_warned = False


def paho_internals_problems(client: mqtt.Client) -> list[str]:
    """What this paho lacks of the internals FastClient relies on (empty: as tested)."""
    problems = [f"Client.{name} is missing" for name in ("_sock", "_protocol") if not hasattr(client, name)]
    packet = getattr(client, "_in_packet", None)
    if not isinstance(packet, dict) or not {"command", "packet"} <= packet.keys():
        problems.append("Client._in_packet is no longer a dict with 'command' and 'packet'")
    for name, expected in _METHODS.items():
        method = getattr(mqtt.Client, name, None)
        if not callable(method):
            problems.append(f"Client.{name} is missing")
        elif (params := list(inspect.signature(method).parameters)[: len(expected)]) != expected:
            problems.append(f"Client.{name} now takes ({', '.join(params)}, ...), not ({', '.join(expected)}, ...)")
    if "_topic" not in getattr(mqtt.MQTTMessage, "__slots__", ()):
        problems.append("MQTTMessage._topic (the raw topic bytes) is missing")
    return problems


def message_topic(msg: mqtt.MQTTMessage) -> bytes:
    """The topic as received: `msg.topic` raises on invalid UTF-8, which must be counted, not crash."""
    topic = getattr(msg, "_topic", None)
    return topic if isinstance(topic, bytes) else msg.topic.encode()


class FastClient(mqtt.Client):
    """paho's Client with a buffered socket read and a short path for plain QoS-1 PUBLISH packets.

    * `_sock_recv` (paho reads a packet as recv(1), recv(1..4), recv(rest)) is served from one large
      recv; `would_block` tells the network loop that the socket had nothing more.
    * `ack_many`: a batch's PUBACKs go out in one write instead of one send() each.
    * `_handle_publish`: a QoS-1 PUBLISH without properties goes to `fast_publish(topic, payload, mid,
      qos)` (manual_ack: acknowledged after the commit); anything else, or a packet the short path
      cannot read, goes to paho's own handler.
    """

    fast_publish: Callable[[bytes, bytes, int, int], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf, self._rpos, self._rsock = b"", 0, None
        self.would_block = False
        problems = paho_internals_problems(self)
        self.fast = not problems
        global _warned
        if problems and not _warned:
            _warned = True
            log.warning(
                "paho-mqtt %s is not what the fast receive path was tested with (%s): using paho's stock path "
                "(slower, same guarantees)",
                paho_version,
                "; ".join(problems),
            )

    def buffered(self) -> bool:
        """Received bytes not yet handed to paho (the socket may not be readable)."""
        return self._rpos < len(self._rbuf) and self._rsock is self._sock

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self.fast:
            return super()._sock_recv(bufsize)
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf) or self._rsock is not self._sock:  # empty, or left over from an old socket
            try:
                buf = super()._sock_recv(READ_CHUNK)
            except BlockingIOError:
                self.would_block = True
                raise
            self._rsock, self._rbuf, pos = self._sock, buf, 0
            if not buf:  # closed by the broker
                return buf
        self._rpos = pos + bufsize
        return buf[pos : pos + bufsize]

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK each QoS-1 message in `mids`, in order, as one write (paho: one send() per ack)."""
        if not self.fast:
            for mid in mids:
                self.ack(mid, 1)
        elif mids:
            self._packet_queue(_PUBACK, b"".join(_PUBACK_HEADER + mid.to_bytes(2, "big") for mid in mids), 0, 0)

    def _handle_publish(self) -> MQTTErrorCode:
        handler = self.fast_publish
        if handler is None or not self.fast:  # (checked first: in a changed paho, _in_packet may be gone)
            return super()._handle_publish()
        packet, command = self._in_packet["packet"], self._in_packet["command"]
        if (command & 0x06) != 0x02:  # QoS 1 only
            return super()._handle_publish()
        try:
            end = 2 + ((packet[0] << 8) | packet[1])
            topic = bytes(packet[2:end])
            mid = (packet[end] << 8) | packet[end + 1]
            start = end + 2
            if self._protocol == mqtt.MQTTv5:
                if packet[start] != 0:  # properties: let paho decode them
                    return super()._handle_publish()
                start += 1
        except IndexError:
            return super()._handle_publish()  # truncated: paho reports the protocol error
        if not topic or mid == 0:
            return super()._handle_publish()
        handler(topic, bytes(packet[start:]), mid, 1)
        return MQTTErrorCode.MQTT_ERR_SUCCESS
