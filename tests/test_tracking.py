"""The tracker, the stitching of segments, the faces-per-visit rule and the barrier's
arithmetic, as plain functions (no AWS)."""

from __future__ import annotations

import os
import random

import pytest

from vidsift.core import completion, face_frames
from vidsift.core.detection import Box
from vidsift.core.face_frames import FaceRule, choose, groups, owner
from vidsift.core.tracking import FramePeople, Point, Track, TrackParams, stitch, track_segment


def _walk(n: int, *, x0: float, dx: float, top: float = 0.3, h: float = 0.4, conf: float = 0.9) -> list[Box]:
    return [Box(round(x0 + dx * i, 4), top, 0.1, h, conf) for i in range(n)]


def crossing(n: int = 14) -> list[FramePeople]:
    """Two people at 1 fps walking towards each other, crossing in the middle; one person
    standing still on the right throughout; detections listed in a varying order."""
    a, b = _walk(n, x0=0.02, dx=0.065), _walk(n, x0=0.86, dx=-0.065, top=0.32, h=0.38, conf=0.8)
    still = Box(0.9, 0.1, 0.08, 0.3, 0.7)
    rng = random.Random(3)
    frames = []
    for i in range(n):
        boxes = [a[i], b[i], still]
        rng.shuffle(boxes)
        frames.append(FramePeople(i, float(i), tuple(boxes)))
    return frames


def ids_by_start(tracks: list[Track]) -> dict[float, list[float]]:
    """Each track as its lefts, keyed by where it started: compares tracks whatever their keys."""
    return {t.first.box.left: [p.box.left for p in t.points] for t in tracks}


def test_crossing_people_keep_their_ids() -> None:
    tracks = track_segment(crossing())
    assert len(tracks) == 3
    by_start = ids_by_start(tracks)
    assert by_start[0.02] == [round(0.02 + 0.065 * i, 4) for i in range(14)]  # left to right, all frames
    assert by_start[0.86] == [round(0.86 - 0.065 * i, 4) for i in range(14)]
    assert by_start[0.9] == [0.9] * 14


def test_arrival_order_does_not_matter() -> None:
    frames = crossing()
    shuffled = frames[:]
    random.Random(7).shuffle(shuffled)
    one, two = track_segment(frames), track_segment(shuffled)
    assert [(t.key, [(p.frame_index, p.box_index) for p in t.points]) for t in one] == \
           [(t.key, [(p.frame_index, p.box_index) for p in t.points]) for t in two]


def test_a_missing_frame_does_not_split_a_track_but_a_long_absence_does() -> None:
    frames = [f for f in crossing() if f.frame_index != 5]  # a frame lost to the DLQ
    assert len(track_segment(frames)) == 3
    boxes = _walk(12, x0=0.1, dx=0.02)
    gone = [FramePeople(i, float(i), (boxes[i],) if not 3 <= i <= 8 else ()) for i in range(12)]
    tracks = track_segment(gone, TrackParams(max_gap_s=3.0))
    assert [[p.frame_index for p in t.points] for t in tracks] == [[0, 1, 2], [9, 10, 11]]


def test_segments_stitched_at_their_boundaries_give_the_whole_video_tracks() -> None:
    frames = crossing()
    whole = stitch([(0.0, track_segment(frames, prefix="a"))])
    parts = stitch([(0.0, track_segment(frames[:5], prefix="a")), (5.0, track_segment(frames[5:10], prefix="b")),
                    (10.0, track_segment(frames[10:], prefix="c"))])
    assert [(t.track_id, [(p.frame_index, p.box_index) for p in t.points]) for t in parts] == \
           [(t.track_id, [(p.frame_index, p.box_index) for p in t.points]) for t in whole]
    assert [t.track_id for t in whole] == ["p001", "p002", "p003"]


def test_someone_new_after_a_boundary_is_not_stitched_to_someone_who_left() -> None:
    left = [FramePeople(i, float(i), (Box(0.1, 0.3, 0.1, 0.4, 0.9),)) for i in range(3)]
    right = [FramePeople(i, float(i), (Box(0.8, 0.3, 0.1, 0.4, 0.9),)) for i in range(3, 6)]
    tracks = stitch([(0.0, track_segment(left, prefix="a")), (3.0, track_segment(right, prefix="b"))])
    assert len(tracks) == 2


def test_someone_else_in_the_same_place_after_a_gap_is_a_new_visit() -> None:
    """Boxes alone cannot tell: the same spot, a 3 s gap. The colours can."""
    red, blue = tuple([0.5, 0.5] + [0.0] * 26) * 2, tuple([0.0] * 26 + [0.5, 0.5]) * 2
    def frames(second: tuple[float, ...] | None) -> list[FramePeople]:
        first = tuple(red) if second is not None else None
        out = [FramePeople(i, float(i), (Box(0.3, 0.1, 0.3, 0.8, 0.9, first),)) for i in range(3)]
        out += [FramePeople(i, float(i), (Box(0.31, 0.1, 0.3, 0.8, 0.9, second),)) for i in range(6, 9)]
        return out
    assert len(track_segment(frames(None))) == 1  # without appearance: one visit, as the boxes say
    assert len(track_segment(frames(tuple(red)))) == 1  # the same colours: the same person came back
    assert len(track_segment(frames(tuple(blue)))) == 2  # other colours: someone else
    assert len(stitch([(0.0, track_segment(frames(tuple(blue))[:3])), (5.0, track_segment(frames(tuple(blue))[3:]))]))\
        == 2


RED, BLUE = tuple([0.5, 0.5] + [0.0] * 26) * 2, tuple([0.0] * 26 + [0.5, 0.5]) * 2


def _lost_and_found(*, gap: int, lost_at: float, found_at: float,
                    colours: tuple[float, ...] = RED) -> list[FramePeople]:
    """A person standing at ``lost_at`` for 3 sampled frames, unseen for ``gap`` frames, then
    at ``found_at`` for 3 more (1 frame a second; boxes 0.2 wide)."""
    seen = [(i, lost_at, RED) for i in range(3)]
    seen += [(i, found_at, colours) for i in range(3 + gap, 6 + gap)]
    hidden = [FramePeople(i, float(i), ()) for i in range(3, 3 + gap)]  # sampled, nobody detected
    return sorted(hidden + [FramePeople(i, float(i), (Box(round(x, 4), 0.1, 0.2, 0.8, 0.9, c),)) for i, x, c in seen],
                  key=lambda f: f.frame_index)


def test_someone_hidden_longer_than_the_tracker_waits_is_found_again_by_their_colours() -> None:
    """Behind another person for 6 frames (the tracker gives up after max_gap_s 4): rejoined, as
    the same colours are found again nearby; not when the colours differ, nor past rejoin_s."""
    assert TrackParams().max_gap_s < 6 <= TrackParams().rejoin_s
    assert len(track_segment(_lost_and_found(gap=6, lost_at=0.4, found_at=0.45))) == 1
    assert len(track_segment(_lost_and_found(gap=6, lost_at=0.4, found_at=0.45), TrackParams(rejoin_s=5))) == 2
    assert len(track_segment(_lost_and_found(gap=6, lost_at=0.4, found_at=0.45, colours=BLUE))) == 2
    assert len(track_segment(_lost_and_found(gap=10, lost_at=0.4, found_at=0.45))) == 2  # past rejoin_s


def test_leaving_at_the_side_and_coming_back_is_a_new_visit() -> None:
    """The same colours, the same place, 7 s later: but at the frame's side, where the new
    track starts too, so the person left and came back: two visits. Found again at a side
    the person was not at is someone entering there (issue 24: a stranger entering at the far
    side within rejoin_s was joined to a person who had left, their dark clothes alike).
    Lost inside the view and found again inside, within reach, is one visit."""
    assert len(track_segment(_lost_and_found(gap=7, lost_at=0.8, found_at=0.8))) == 2
    assert len(track_segment(_lost_and_found(gap=7, lost_at=0.0, found_at=0.05))) == 2
    assert len(track_segment(_lost_and_found(gap=7, lost_at=0.4, found_at=0.8))) == 2
    assert len(track_segment(_lost_and_found(gap=7, lost_at=0.8, found_at=0.05))) == 2
    assert len(track_segment(_lost_and_found(gap=7, lost_at=0.4, found_at=0.55))) == 1
    # Found further away than a person walks in the gap: somebody else in the same colours.
    far = _lost_and_found(gap=7, lost_at=0.3, found_at=0.75)
    assert len(track_segment(far)) == 1
    assert len(track_segment(far, TrackParams(rejoin_reach=0.1, rejoin_reach_per_s=0.01))) == 2


def _track(heights: list[float], *, step: float = 1.0, conf: float = 0.9) -> Track:
    return Track(key="t", points=[Point(i, i * step, 0, Box(0.4, 0.1, 0.1, h, conf)) for i, h in enumerate(heights)])


def test_faces_of_a_visit_on_its_best_frame_only_when_nothing_changes() -> None:
    t = _track([0.5] * 40)
    assert [p.frame_index for p in choose(t, FaceRule())] == [0]


def test_another_face_frame_only_for_a_long_stay() -> None:
    approaching = _track([0.3, 0.32, 0.35, 0.46, 0.5, 0.7, 0.72])
    assert [p.frame_index for p in choose(approaching, FaceRule())] == [6]  # where they came closest
    stay = _track([0.5] * 150)
    assert [p.frame_index for p in choose(stay, FaceRule(revisit_s=60))] == [0, 60, 120]
    assert len(choose(stay, FaceRule(revisit_s=10, max_frames=4))) == 4
    assert [p.frame_index for p in choose(stay, FaceRule(revisit_s=0))] == [0]
    wandering = _track([0.5] * 30 + [0.8] + [0.5] * 100)  # closest at 30 s: 30, then 90 and 150 s away
    assert [p.frame_index for p in choose(wandering, FaceRule(revisit_s=60))] == [30, 90]


def test_no_face_frame_for_a_person_too_small_for_a_findable_face() -> None:
    assert choose(_track([0.1, 0.2, 0.24]), FaceRule()) == []
    assert [p.frame_index for p in choose(_track([0.1, 0.2, 0.26]), FaceRule())] == [2]
    assert choose(_track([0.1, 0.3]), FaceRule(min_person_height=0.4)) == []
    # the default is derived from Rekognition's 40 px face in 1080 px, a face 1/7 of a person
    assert FaceRule().min_person_height == pytest.approx(face_frames.REKOGNITION_MIN_FACE
                                                        * face_frames.FACES_PER_PERSON_HEIGHT, abs=0.02)


def test_face_rule_settings_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidsift.core.errors import ConfigError

    monkeypatch.setenv("FACE_MIN_PERSON_HEIGHT", "0.4")
    monkeypatch.setenv("FACE_FRAMES_MAX", "2")
    assert FaceRule.from_mapping(os.environ) == FaceRule(min_person_height=0.4, max_frames=2)
    monkeypatch.setenv("FACE_REVISIT_S", "soon")
    with pytest.raises(ConfigError, match="FACE_REVISIT_S"):
        FaceRule.from_mapping(os.environ)


def test_tracks_sharing_a_frame_are_analysed_together() -> None:
    assert groups({"p001": [3, 9], "p002": [9], "p003": [20], "p004": [21, 3]}) == [["p001", "p002", "p004"],
                                                                                    ["p003"]]


def test_a_face_belongs_to_the_person_whose_upper_body_holds_it() -> None:
    people = [("p001", Box(0.1, 0.1, 0.3, 0.8, 0.9)), ("p002", Box(0.3, 0.2, 0.2, 0.5, 0.9))]
    assert owner({"Left": 0.17, "Top": 0.15, "Width": 0.06, "Height": 0.08}, people) == "p001"
    assert owner({"Left": 0.35, "Top": 0.25, "Width": 0.05, "Height": 0.06}, people) == "p002"  # the nearer one
    assert owner({"Left": 0.7, "Top": 0.2, "Width": 0.05, "Height": 0.06}, people) is None
    assert owner({"Left": 0.17, "Top": 0.75, "Width": 0.06, "Height": 0.08}, people) is None  # at the knees


def test_the_barrier_counts_frames_as_sets_per_segment() -> None:
    seg0 = completion.sampled_fields(3, 0, 2, 0.0) | {"done": {0, 1, completion.SENTINEL}}
    assert not completion.segment_detected(seg0)
    assert not completion.segment_detected({"expected": completion.SENTINEL, "done": {0, 1, 2}})  # not reported yet
    seg0["failed"] = {2, 0, completion.SENTINEL}  # given up (and one also done: counted once)
    assert completion.segment_detected(seg0) and completion.span(seg0) == (0.0, 0, 2)
    assert completion.recovered(seg0) == {0} and completion.gaps(seg0) == {2} and completion.generation(seg0) == 1
    empty = completion.sampled_fields(0, None, None, 0.0)
    assert completion.segment_detected(empty) and completion.span(empty) is None
    assert not completion.tracked({"segments": 2, "tracked": {1, completion.SENTINEL}})
    assert completion.tracked({"segments": 2, "tracked": {0, 1, completion.SENTINEL}})
    assert [completion.segment_of(i, 300, 3) for i in (0, 299, 300, 899, 950)] == [0, 0, 1, 2, 2]
    assert completion.segment_of(12345, 0, 1) == 0


def test_extra_frames_in_one_segment_cannot_hide_missing_ones_in_another() -> None:
    """Main counted a video's settled frames against the sum of its segments' counts: a
    frame too many in one segment (a frame rewritten under another index by a retried split)
    made up for one missing in the other, and the video was tracked without it, unsaid."""
    seg0 = completion.sampled_fields(3, 0, 2, 0.0) | {"done": {0, 1, 2, 7}}
    seg1 = completion.sampled_fields(3, 3, 5, 3.0) | {"done": {3, 4}}
    assert completion.segment_detected(seg0) and not completion.segment_detected(seg1)
    seg1["done"].add(9)  # nor a stray index within the segment's own item, outside its span
    assert not completion.segment_detected(seg1)


def test_a_tracking_message_without_its_fields_is_a_bad_input() -> None:
    from vidsift.core.errors import BadInputError

    assert completion.message_kind({"Records": []}) is None  # an S3 event: not ours to judge
    assert completion.message_kind(completion.SegmentMessage("v", 2).to_json()) == (completion.SEGMENT_MESSAGE,
                                                                      {"video_id": "v", "segment": 2, "generation": 0})
    # a message queued by main (no generation) is generation 0
    assert completion.message_kind({completion.VIDEO_MESSAGE: {"video_id": "v"}})[1] == {"video_id": "v",
                                                                                          "generation": 0}
    for bad in ({completion.SEGMENT_MESSAGE: {"video_id": "v"}}, {completion.FACES_MESSAGE: {"video_id": "v"}},
                {completion.VIDEO_MESSAGE: "v"}, {completion.SEGMENT_MESSAGE: {"video_id": "v", "segment": True}}):
        with pytest.raises(BadInputError, match="without a valid"):
            completion.message_kind(bad)


def test_frame_items_dynamodb_leaves_unprocessed_are_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """BatchWriteItem and BatchGetItem may leave part of a batch undone (a throttled partition)
    and still succeed: exactly that part is sent again, after a backoff, and a frame named twice
    is written once (DynamoDB refuses a batch with one key twice)."""
    from botocore.stub import ANY, Stubber

    from vidsift import aws
    from vidsift.storage.progress import DynamoProgressStore

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached: the stub answers
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "stub")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "stub")
    waits: list[int] = []
    monkeypatch.setattr(aws, "backoff", lambda attempt, **_: waits.append(attempt) or 0.0)
    aws.reset_clients()
    client = aws.client("dynamodb")

    def put(n: int, doc: str, expires: object = ANY) -> dict:
        return {"PutRequest": {"Item": {"part": {"S": "v"}, "n": {"N": str(n)}, "doc": {"S": doc},
                                        "expires_at": {"N": expires}}}}

    with Stubber(client) as stub:
        stub.add_response("batch_write_item", {"UnprocessedItems": {"t": [put(1, '{"b":1}', "7")]}},
                          {"RequestItems": {"t": [put(0, '{"a":2}'), put(1, '{"b":1}')]}})
        stub.add_response("batch_write_item", {"UnprocessedItems": {}},
                          {"RequestItems": {"t": [put(1, '{"b":1}', "7")]}})
        DynamoProgressStore("t").put_frames([("v", 0, {"a": 1}), ("v", 1, {"b": 1}), ("v", 0, {"a": 2})])
        stub.assert_no_pending_responses()

        key = {"part": {"S": "v"}, "n": {"N": "0"}}
        progress_key = {"part": {"S": "v"}, "n": {"N": "-1"}}
        stub.add_response("batch_get_item", {"Responses": {"t": [{**progress_key, "done": {"NS": ["0"]}}]},
                                             "UnprocessedKeys": {"t": {"Keys": [key], "ConsistentRead": True}}},
                          {"RequestItems": {"t": {"Keys": [key, progress_key], "ConsistentRead": True}}})
        stub.add_response("batch_get_item", {"Responses": {"t": [{**key, "doc": {"S": '{"a":2}'}}]}},
                          {"RequestItems": {"t": {"Keys": [key], "ConsistentRead": True}}})
        got = DynamoProgressStore("t").get([("v", 0), ("v", -1), ("v", 0)])
        assert got == {("v", 0): {"a": 2}, ("v", -1): {"done": {0}}}
        stub.assert_no_pending_responses()
    assert waits == [0, 0]
    aws.reset_clients()
