"""The store's alert side on a real SQLite file and a real PostgreSQL: alert lifecycle upserts, media
ownership, listings, acknowledgements with the audit log, rules versions, counts, webhook deliveries,
retention and the v1 → v2 migration."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ground_station.store import SCHEMA_VERSION, AlertMedia, Received, Store
from ground_station.store.queries import BadCursorError
from ground_station.store.rules import VersionConflictError
from ground_station.store.schema import V2_TABLES, schema_version
from ground_station.store.supervision import AlreadyDoneError, NoSuchAlertError
from smarteye.wire.messages import AlertClip, AlertState
from smarteye.wire.rules import RuleSet, Severity, Zone
from tests.support.alerts import T0, clip_announcement, make_alert, make_counts
from tests.support.factories import make_event

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as opened:
        yield opened


def received(message, at: float | None = None) -> Received:  # type: ignore[no-untyped-def]
    return Received(message, time.time() if at is None else at, message.model_dump_json())


def no_changes(old: RuleSet | None, new: RuleSet | None) -> list[str]:
    return ["(test)"]


def test_an_alert_keeps_its_newest_state_and_every_transition_time(store: Store) -> None:
    clip = AlertClip(start_time=T0 - 5, end_time=T0 + 5, bytes=1234)
    start = make_alert("a1", 0)
    grows = make_alert("a1", 1, objects=3)
    ends = make_alert("a1", 2, AlertState.END, objects=0)
    with_clip = clip_announcement(start, clip)  # seq 0, the start's content: may come after the end
    late_update = make_alert("a1", 3, objects=2)  # a lifecycle message after the end cannot reopen it either
    # Out of order: the end and the clip arrive before the update; the start comes twice.
    result = store.write_batch([received(start), received(ends), received(start)])
    assert result.new_alert_messages == ["a1:0", "a1:2"]
    batch = [received(with_clip), received(grows), received(late_update)]
    assert store.write_batch(batch).new_alert_messages == ["a1:clip", "a1:1", "a1:3"]
    alert = store.get_alert("a1")
    assert alert is not None
    assert (alert.state, alert.seq, alert.count) == ("end", 3, 0)
    assert (alert.start_time, alert.end_time, alert.update_time) == (T0, T0 + 2, T0 + 2)
    assert alert.clip == clip and alert.snapshot
    assert (alert.rule, alert.rule_kind, alert.severity, alert.zone) == ("door-enter", "enter", "warning", "door")
    assert not alert.has_snapshot and not alert.has_clip  # announced, not received yet
    assert [m.id for m in store.alert_history("a1")] == ["a1:0", "a1:clip", "a1:1", "a1:2", "a1:3"]
    assert store.write_batch([received(grows)]).new_alert_messages == []  # a redelivery changes nothing


def test_an_alert_first_seen_through_its_clip_announcement_is_started(store: Store) -> None:
    clip = AlertClip(start_time=T0 - 5, end_time=T0 + 5, bytes=1234)
    store.write_batch([received(clip_announcement(make_alert("c1", 0, objects=2), clip))])
    alert = store.get_alert("c1")
    assert alert is not None and (alert.state, alert.seq, alert.count, alert.clip) == ("start", 0, 2, clip)
    store.write_batch([received(make_alert("c1", 1, objects=1))])
    alert = store.get_alert("c1")
    assert alert is not None and (alert.state, alert.count, alert.clip) == ("update", 1, clip)


def test_another_node_can_neither_change_an_alert_nor_give_it_media(store: Store) -> None:
    store.write_batch([received(make_alert("a1", 0, node="node1"))])
    # Media may come before their alert (here: a2's); a node's media are served for its own alert only.
    early = AlertMedia("snapshot", "a2", "node1", "cam1", b"\xff\xd8\xff early")
    squatter = AlertMedia("clip", "a2", "node2", "cam1", b"\0\0\0\x20ftyp other")
    result = store.write_batch(
        [received(make_alert("a1", 1, node="node2", objects=5))],
        media=[
            AlertMedia("snapshot", "a1", "node1", "cam1", b"\xff\xd8\xff own"),
            AlertMedia("clip", "a1", "node2", "cam1", b"\0\0\0\x20ftyp forged"),
            AlertMedia("snapshot", "a1", "node1", "cam9", b"\xff\xd8\xff other stream"),
            early,
            squatter,
        ],
    )
    assert [(m.node, m.stream) for m in result.refused_media] == [("node2", "cam1"), ("node1", "cam9")]
    alert = store.get_alert("a1")
    assert alert is not None and (alert.node, alert.count, alert.seq) == ("node1", 1, 0)
    assert [m.seq for m in store.alert_history("a1")] == [0]  # node2's message is not a1's history
    assert store.alert_snapshot("a1") == b"\xff\xd8\xff own" and store.alert_clip("a1") is None
    assert store.alert_snapshot("a2") is None  # no alert a2 yet
    store.write_batch([received(make_alert("a2", 0, node="node1"))])
    assert store.alert_snapshot("a2") == early.data
    assert store.alert_clip("a2") is None  # node2's clip is not node1's alert's
    assert store.get_alert("a2").has_snapshot  # type: ignore[union-attr]


def test_listing_filters_and_pages(store: Store) -> None:
    messages = [
        make_alert(f"a{i}", 0, node=f"node{i % 2}", stream="cam1", rule="loiter" if i % 3 == 0 else "door-enter",
                   severity=Severity.CRITICAL if i == 4 else Severity.WARNING, start_time=T0 + i // 2)
        for i in range(9)
    ]  # fmt: skip
    messages.append(make_alert("a1", 1, AlertState.END, node="node1", start_time=T0))
    store.write_batch([received(m) for m in messages])

    def ids(**filters: object) -> list[str]:
        return [a.alert_id for a in store.query_alerts(**filters).alerts]  # type: ignore[arg-type]

    assert ids() == ["a8", "a7", "a6", "a5", "a4", "a3", "a2", "a1", "a0"]  # newest start, then id
    assert ids(node="node0") == ["a8", "a6", "a4", "a2", "a0"]
    assert ids(rule="loiter") == ["a6", "a3", "a0"]
    assert ids(severity="critical") == ["a4"]
    assert ids(state="end") == ["a1"] and ids(state=["start"])[-1] == "a0"
    assert ids(since=T0 + 1, until=T0 + 3) == ["a5", "a4", "a3", "a2"]
    store.acknowledge_alert("a3", "sam")
    store.resolve_alert("a5", "ada")
    assert ids(acknowledged=True) == ["a5", "a3"] and ids(resolved=True) == ["a5"]
    assert len(ids(acknowledged=False)) == 7
    seen, cursor = [], None
    while True:
        page = store.query_alerts(limit=4, cursor=cursor)
        seen += [a.alert_id for a in page.alerts]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids()
    assert store.count_alerts(node="node1") == 4
    with pytest.raises(TypeError, match=r"unknown filter\(s\): acked "):  # a misspelt filter is no filter left out
        store.count_alerts(acked=True)  # type: ignore[call-arg]
    with pytest.raises(BadCursorError):
        store.query_alerts(cursor="nope")


def test_acknowledge_and_resolve_once_each_with_who_when_and_the_audit_log(store: Store) -> None:
    store.write_batch([received(make_alert("a1", 0)), received(make_alert("a2", 0))])
    before = time.time()
    store.acknowledge_alert("a1", "sam", "on my way")
    with pytest.raises(AlreadyDoneError, match="acknowledged by sam"):
        store.acknowledge_alert("a1", "ada")
    store.resolve_alert("a1", "ada", "false alarm: a cat")
    store.resolve_alert("a2", "sam")  # resolving acknowledges too
    with pytest.raises(AlreadyDoneError, match="resolved by sam"):
        store.resolve_alert("a2", "ada")
    with pytest.raises(NoSuchAlertError):
        store.acknowledge_alert("nope", "sam")
    a1, a2 = store.get_alert("a1"), store.get_alert("a2")
    assert a1 is not None and a2 is not None
    assert (a1.acked_by, a1.resolved_by, a2.acked_by, a2.resolved_by) == ("sam", "ada", "sam", "sam")
    assert a1.acked_time is not None and before <= a1.acked_time <= a1.resolved_time  # type: ignore[operator]
    log = store.query_audit().entries
    assert [(e.actor, e.action, e.target, e.detail) for e in log] == [
        ("sam", "alert.resolve", "a2", {"note": None}),
        ("ada", "alert.resolve", "a1", {"note": "false alarm: a cat"}),
        ("sam", "alert.acknowledge", "a1", {"note": "on my way"}),
    ]
    assert [e.target for e in store.query_audit(actor="sam").entries] == ["a2", "a1"]
    page = store.query_audit(limit=2)
    assert len(page.entries) == 2 and [e.target for e in store.query_audit(cursor=page.next_cursor).entries] == ["a1"]


def test_rules_versions_count_up_with_author_and_audit(store: Store) -> None:
    door = Zone(name="door", points=[(0.1, 0.1), (0.5, 0.1), (0.5, 0.6)])
    assert store.current_rules("node1", "cam1") is None
    first = store.save_rules("node1", "cam1", RuleSet(version=7, zones=[door]), "sam", no_changes)
    assert (first.version, first.rules.version, first.author) == (1, 1, "sam")  # type: ignore[union-attr]
    with pytest.raises(VersionConflictError, match="at version 1, not 0"):
        store.save_rules("node1", "cam1", RuleSet(), "ada", no_changes, base_version=0)
    second = store.save_rules("node1", "cam1", RuleSet(), "ada", no_changes, base_version=1)
    cleared = store.save_rules("node1", "cam1", None, "ada", no_changes)
    store.save_rules("node1", "cam2", RuleSet(), "sam", no_changes)
    assert (second.version, cleared.version, cleared.rules) == (2, 3, None)
    current = store.current_rules("node1", "cam1")
    assert current is not None and current.version == 3 and current.published_time is None
    assert [v.version for v in store.rules_history("node1", "cam1")] == [3, 2, 1]
    assert [(v.stream, v.version) for v in store.latest_rules(unpublished_only=True)] == [("cam1", 3), ("cam2", 1)]
    store.mark_rules_published("node1", "cam1", 3)
    assert [(v.stream, v.version) for v in store.latest_rules(unpublished_only=True)] == [("cam2", 1)]
    assert [(v.stream, v.version) for v in store.latest_rules()] == [("cam1", 3), ("cam2", 1)]
    log = store.query_audit(target="node1/cam1").entries
    assert [(e.action, e.detail["from_version"], e.detail["to_version"]) for e in log] == [
        ("rules.clear", 2, 3), ("rules.save", 1, 2), ("rules.save", 0, 1),
    ]  # fmt: skip


def test_counts_series(store: Store) -> None:
    counts = [make_counts(time=T0 + 10 * i, people=i) for i in range(30)]
    store.write_batch([received(c) for c in counts + counts[:5]])  # redeliveries are dropped
    store.write_batch([received(make_counts(stream="cam2", time=T0))])
    points, truncated = store.counts_series("node1", "cam1")
    assert [p.zones["door"] for p in points] == list(range(30)) and not truncated
    assert points[3].lines == {"gate": {"in": 3, "out": 1}} and points[3].time == T0 + 30
    points, truncated = store.counts_series("node1", "cam1", since=T0 + 50, until=T0 + 200, limit=5)
    assert [p.zones["door"] for p in points] == [15, 16, 17, 18, 19] and truncated


def test_webhook_deliveries_are_written_with_the_alert_and_move_on(store: Store) -> None:
    urls = ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]

    def targets(alert):  # type: ignore[no-untyped-def]
        return urls if alert.state is AlertState.START else urls[:1]

    start, end = make_alert("a1", 0), make_alert("a1", 1, AlertState.END)
    store.write_batch([received(start), received(end)], webhook_targets=targets)
    store.write_batch([received(start)], webhook_targets=targets)  # a redelivery: no second delivery
    assert store.delivery_summary() == {urls[0]: {"pending": 2, "delivered": 0, "failed": 0},
                                        urls[1]: {"pending": 1, "delivered": 0, "failed": 0}}  # fmt: skip
    now = time.time()
    due = store.due_deliveries(urls[0], now)
    assert [d.message_id for d in due] == ["a1:0", "a1:1"] and due[0].payload == start.model_dump_json()
    assert store.claim_delivery(due[0], now + 60) and not store.claim_delivery(due[0], now + 60)  # one winner
    assert [d.message_id for d in store.due_deliveries(urls[0], now)] == ["a1:1"]
    store.delivery_succeeded(due[0].id, 204, now)
    store.delivery_failed(due[1].id, "ConnectError: refused", None, now + 30, now)
    assert store.due_deliveries(urls[0], now) == [] and store.next_delivery_due(urls[0]) == now + 30
    store.delivery_failed(due[1].id, "HTTP 500", 500, None, now)  # the last attempt
    failed = store.query_deliveries(state="failed").deliveries
    assert [(d.message_id, d.attempts, d.last_error, d.last_status) for d in failed] == [("a1:1", 2, "HTTP 500", 500)]
    assert store.retry_delivery(failed[0].id) and not store.retry_delivery(due[0].id)
    assert store.query_deliveries(state="pending", url=urls[0]).deliveries[0].attempts == 0
    store.write_batch([received(make_alert(f"b{i}", 0)) for i in range(5)], webhook_targets=targets)
    assert store.bound_deliveries(urls[1], 2, now) == 4  # 6 pending to b: the oldest 4 fail
    assert store.fail_unconfigured_deliveries(urls[1:], now) == 6  # a was removed from the configuration
    assert store.delivery_summary()[urls[0]] == {"pending": 0, "delivered": 1, "failed": 6}
    page = store.query_deliveries(limit=3)
    assert len(page.deliveries) == 3 and page.next_cursor is not None
    rest = store.query_deliveries(before_id=int(page.next_cursor))
    assert len(page.deliveries) + len(rest.deliveries) == 13


def test_retention_covers_alert_data_but_keeps_rules_and_audit(store: Store) -> None:
    now = T0 + 100 * 86400
    old, recent = now - 40 * 86400, now - 3600
    aged = [make_alert("old", 0), make_counts(time=T0), make_event("e")]
    store.write_batch(
        [received(message, at=old) for message in aged],
        media=[AlertMedia("snapshot", "old", "node1", "cam1", b"\xff\xd8\xff")],
        webhook_targets=lambda alert: ["http://127.0.0.1:9/h"],
    )  # fmt: skip
    store.write_batch(
        [received(make_alert("new", 0), at=recent)], webhook_targets=lambda alert: ["http://127.0.0.1:9/h"]
    )
    with store.engine.begin() as conn:  # the old delivery finished long ago; the media came with the alert
        conn.exec_driver_sql(f"UPDATE webhook_deliveries SET state='delivered', finished_time={old} "
                             "WHERE message_id='old:0'")  # fmt: skip
        conn.exec_driver_sql(f"UPDATE alert_media SET received_time={old}")
    store.save_rules("node1", "cam1", RuleSet(), "sam", no_changes)
    store.acknowledge_alert("old", "sam")
    result = store.purge(max_age_s=30 * 86400, now=now)
    assert (result.by_age, result.alert_rows) == (1, 5)  # alert, message, media, counts, delivery
    assert [a.alert_id for a in store.query_alerts().alerts] == ["new"]
    assert store.counts_series("node1", "cam1")[0] == [] and store.alert_snapshot("old") is None
    assert [d.message_id for d in store.query_deliveries().deliveries] == ["new:0"]
    assert store.current_rules("node1", "cam1") is not None and len(store.query_audit().entries) == 2


def test_a_v1_database_is_migrated_to_v2_keeping_its_events(db_url: str) -> None:
    with Store(db_url) as store:  # make it look like v1: no alert tables, stamped 1
        store.write([received(make_event("kept"))])
        with store.engine.begin() as conn:
            for table in reversed(V2_TABLES):
                table.drop(conn)
            conn.execute(sa.update(schema_version).values(version=1))  # a new store is stamped at once
    with Store(db_url) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert store.count_events() == 1
        with store.engine.connect() as conn:
            assert {t.name for t in V2_TABLES} <= set(sa.inspect(conn).get_table_names())
            assert sorted(conn.execute(sa.select(schema_version.c.version)).scalars()) == [1, 2, 3]  # the steps ran
        store.write_batch([received(make_alert("a1", 0))])
        assert store.get_alert("a1") is not None
