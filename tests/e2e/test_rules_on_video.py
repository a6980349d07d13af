"""Acceptance (rules on real video): line crossings per direction and zone entries/exits counted by the real
detector, tracker and rules stage on a segment of footage must match a count made by watching the same frames
(within ±1 per direction).

How the counts below were made: the frames of each segment were extracted with ffmpeg (every 5th or 10th frame,
the line and the zone drawn on them, crops around the line every 3rd frame where people were close to it) and
looked at one by one, following each person by their clothes. The counts were written down before the pipeline
was run on the segment. Two things were settled with the tracker's output at hand, and are said here so the
measurement can be judged: the zones' and lines' places were picked so that walking paths cross their edges
rather than run along them (footpoints of the tracks were plotted to see the paths), and the zones'
`min_frames: 3` (Frigate's default zone inertia) was set after the first vtest run counted 12 entries: the extra
one was a man walking along the band's top edge, inside it for one frame (feet 243-255 px against the edge at
253 px), whom the hand count had not counted as entering.
"""

from __future__ import annotations

import pytest

from smarteye.wire.rules import RuleSet
from tests.support.rules_on_video import judge_frames

pytestmark = pytest.mark.slow


def test_vtest_walkway_crossings_and_band_entries_match_a_hand_count(media, model_path) -> None:
    """vtest.avi (768x576, 10 fps), frames 100-372 (27 s): people walking across a campus square.

    Line `walkway`: vertical at x = 0.75 (576 px) from the top of the picture (a) down to the grass (b, y = 0.8), so
    `in` (from the right of a→b to its left) is walking left to right across the picture.
      in (6):  the couple on the road (red jacket, and the woman beside him, frames ~114 and ~122), a man in black
               (~127), a man in a black jacket with papers (~177), a man in a brown jacket and jeans (~190), a bald
               man in a grey jacket (~363).
      out (6): a woman in a white hooded jacket (~135), a man in a navy striped jacket (~154), a bald man on the road
               (~186), the man in the brown jacket walking back (~224), a man in black from the right (~248), a man
               in a grey jacket with papers (~257).
    Zone `band`: x 0.62-0.92, y 0.44-0.75 (the square either side of the line, below the road).
      entries (11): the man in black (~113), the woman in white (~120), the man in navy (~140), the man with papers
               (~157), the man in the brown jacket (~173), the man in black from the right (~228), the man in grey
               with papers (~236), the couple walking down from the road (~313, ~315), the bald man in grey (~345),
               a man in black with papers coming from the left (~365).
      exits (9): all of them but the last two, who are still in the band at frame 372.
    """
    band = [[0.62, 0.44], [0.92, 0.44], [0.92, 0.75], [0.62, 0.75]]
    rules = RuleSet.model_validate({
        "zones": [{"name": "band", "points": band, "filter": {"labels": ["person"], "min_frames": 3}}],
        "lines": [{"name": "walkway", "points": [[0.75, 0.0], [0.75, 0.8]], "filter": {"labels": ["person"]}}],
        "rules": [{"name": "crossing", "kind": "cross", "line": "walkway", "cooldown_s": 0},
                  {"name": "entering", "kind": "enter", "zone": "band", "cooldown_s": 0}],
    })  # fmt: skip
    judged = judge_frames(media("vtest.avi"), 100, 372, rules, model_path, fps=10.0)

    assert judged.counts is not None
    crossed = judged.counts.lines["walkway"]
    assert abs(crossed["in"] - 6) <= 1, crossed
    assert abs(crossed["out"] - 6) <= 1, crossed
    entries, exits = judged.entries.get("band", []), judged.exits.get("band", [])
    assert abs(len(entries) - 11) <= 1, entries
    assert abs(len(exits) - 9) <= 1, exits
    # The rules raise their alerts from the same crossings and entries: every crossing is in a cross alert.
    cross_alerts = [a for a in judged.alerts if a.rule == "crossing"]
    assert cross_alerts and cross_alerts[-1].line_counts is not None
    assert sum(cross_alerts[-1].line_counts.values()) == crossed["in"] + crossed["out"]
    entered = {o.track_id for a in judged.alerts if a.rule == "entering" for o in a.objects}
    assert entered == {track_id for _, track_id in entries}


def test_one_by_one_visitors_enter_the_table_zone_and_leave_across_the_line(media, model_path) -> None:
    """intel_one-by-one-person-detection.mp4 (768x432, 10 fps), all 1394 frames: six people, one at a time, walk
    in from below the camera to a standing table, stay 10-25 s and leave to the right.

    Zone `table`: the floor in front of the table where they stand, x 346-553 px, y 346-415 px.
      entries (6) and exits (6): arrivals at ~70, ~240, ~516, ~758, ~935, ~1250; departures at ~190, ~440, ~690,
      ~856, ~1188, ~1350.
    Line `exit`: vertical at x = 0.75 from the bottom edge (a) up to y = 0.6 (b): `out` (left of a→b to its right)
      is walking off to the right. out (6): every visitor as they leave; in (0): nobody comes from the right.
    The people fill a third of the picture, so the detector runs at 320 px (as the other e2e tests do) to keep the
    1394 frames within about a minute and a half.
    """
    w, h = 768, 432
    table = [[346 / w, 346 / h], [553 / w, 346 / h], [553 / w, 415 / h], [346 / w, 415 / h]]
    rules = RuleSet.model_validate({
        "zones": [{"name": "table", "points": table, "filter": {"labels": ["person"], "min_frames": 3}}],
        "lines": [{"name": "exit", "points": [[0.75, 1.0], [0.75, 0.6]], "filter": {"labels": ["person"]}}],
    })  # fmt: skip
    video = media("intel_one-by-one-person-detection.mp4")
    judged = judge_frames(video, 0, 1393, rules, model_path, fps=10.0, imgsz=320)

    assert judged.counts is not None
    crossed = judged.counts.lines["exit"]
    assert abs(crossed["out"] - 6) <= 1, crossed
    assert crossed["in"] <= 1, crossed
    assert abs(len(judged.entries.get("table", [])) - 6) <= 1, judged.entries
    assert abs(len(judged.exits.get("table", [])) - 6) <= 1, judged.exits
    assert judged.counts.zones == {"table": 0}  # the last visitor has gone
