import json
from datetime import UTC, datetime

from vidsift import contract
from vidsift.core import keys
from vidsift.core.detection import Box, Detection, parse_response
from vidsift.core.records import FrameMeta, build_face_record, build_people_record, captured_at, keep_face

META = FrameMeta(video_id="v1", source_bucket="raw", source_key="uploads/caf\u00e9 1.mp4", camera_id="cam/1",
                 frame_index=7, frame_time_s=7.0, captured_at="2026-01-01T12:00:07.000Z")
NOW = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)

FULL_DETAIL = {
    "BoundingBox": {"Left": 0.1, "Top": 0.2, "Width": 0.3, "Height": 0.4}, "Confidence": 99.5,
    "AgeRange": {"Low": 25, "High": 35}, "Gender": {"Value": "Female", "Confidence": 97.0},
    "Emotions": [{"Type": "CALM", "Confidence": 80.0}, {"Type": "HAPPY", "Confidence": 15.0}],
    "Smile": {"Value": False, "Confidence": 90.0}, "Eyeglasses": {"Value": True, "Confidence": 99.0},
    "Sunglasses": {"Value": False, "Confidence": 99.0}, "Beard": {"Value": False, "Confidence": 90.0},
    "Mustache": {"Value": False, "Confidence": 90.0}, "EyesOpen": {"Value": True, "Confidence": 95.0},
    "MouthOpen": {"Value": False, "Confidence": 95.0}, "Pose": {"Roll": 1.5, "Yaw": -10.25, "Pitch": 3.0},
    "Quality": {"Brightness": 70.0, "Sharpness": 80.0},
    "FaceOccluded": {"Value": True, "Confidence": 88.0},
    "EyeDirection": {"Yaw": 12.5, "Pitch": -4.0, "Confidence": 97.0},
}


def test_meta_survives_s3_metadata_round_trip() -> None:
    s3 = META.to_s3()
    assert all(v.isascii() for v in s3.values())
    assert FrameMeta.from_s3(s3) == META


def test_people_record_has_exactly_the_contract_columns() -> None:
    det = Detection(model="m", boxes=(Box(0.1, 0.1, 0.2, 0.5, 0.9), Box(0.5, 0.1, 0.2, 0.5, 0.7)))
    rec = build_people_record(META, det, NOW)
    assert list(rec) == contract.columns("people")
    assert rec["person_count"] == 2 and rec["max_confidence"] == 0.9 and rec["dt"] == "2026-02-03"
    assert rec["frame_key"] == keys.frame_key("v1", 7) == "v1/000007.jpg"
    assert json.loads(rec["boxes"])[0]["confidence"] == 0.9
    assert rec["record_id"] == build_people_record(META, det, datetime.now(UTC))["record_id"]


def test_face_record_flattens_every_attribute() -> None:
    rec = build_face_record(META, 0, FULL_DETAIL, "amazon-rekognition", NOW)
    assert list(rec) == contract.columns("faces")
    assert rec["top_emotion"] == "CALM" and json.loads(rec["emotions"]) == {"CALM": 80.0, "HAPPY": 15.0}
    assert (rec["age_low"], rec["age_high"], rec["gender"]) == (25, 35, "Female")
    assert rec["eyeglasses"] is True and rec["smile"] is False and rec["pose_yaw"] == -10.25
    assert (rec["face_occluded"], rec["eye_direction_yaw"], rec["eye_direction_pitch"]) == (True, 12.5, -4.0)


def test_attributes_not_estimated_stay_null() -> None:
    detail = {k: FULL_DETAIL[k] for k in ("BoundingBox", "Confidence", "Pose", "Quality")}
    rec = build_face_record(META, 1, detail, "local", NOW)
    for col in ("age_low", "age_high", "gender", "gender_confidence", "top_emotion", "emotions", "smile",
                "eyeglasses", "sunglasses", "beard", "mustache", "eyes_open", "mouth_open", "face_occluded",
                "eye_direction_yaw", "eye_direction_pitch"):
        assert rec[col] is None, col
    assert rec["pose_roll"] == 1.5


def test_face_filters() -> None:
    assert keep_face(FULL_DETAIL, 90, 0.05)
    assert not keep_face(FULL_DETAIL, 99.9, 0.05)
    assert not keep_face(FULL_DETAIL, 90, 0.5)


def test_captured_at() -> None:
    assert captured_at("2026-01-01T00:00:00Z", 61.5) == "2026-01-01T00:01:01.500Z"
    assert captured_at(None, 3) is None and captured_at("yesterday", 3) is None


def test_parse_response_checks_the_count() -> None:
    doc = {"model": "m", "predictions": [{"boxes": [{"left": 0, "top": 0, "width": 1, "height": 1,
                                                      "confidence": 0.6}]}, {"boxes": []}]}
    a, b = parse_response(doc, 2)
    assert a.person_count == 1 and b.person_count == 0 and b.max_confidence is None
    import pytest

    from vidsift.core.errors import BadInputError

    with pytest.raises(BadInputError):
        parse_response(doc, 3)


def test_parse_response_keeps_each_frames_metadata() -> None:
    """What the endpoint read with each frame comes back with its detection; a value that is no
    object of strings is a broken response, not metadata."""
    import pytest

    from vidsift.core.detection import build_request
    from vidsift.core.errors import BadInputError

    assert build_request(["s3://f/v/000001.jpg"], 0.5)["metadata"] is True
    doc = {"model": "m", "predictions": [{"boxes": [], "metadata": {"video-id": "v", "frame-index": "1"}},
                                         {"boxes": []}]}
    a, b = parse_response(doc, 2)
    assert a.metadata == {"video-id": "v", "frame-index": "1"} and b.metadata is None
    assert a == Detection(model="m", boxes=())  # metadata is not part of what a detection is
    with pytest.raises(BadInputError, match="metadata"):
        parse_response({"model": "m", "predictions": [{"boxes": [], "metadata": {"frame-index": 1}}]}, 1)


def test_alert_only_mark_round_trips_and_stays_out_of_ordinary_frames() -> None:
    """The mark detect_people puts on an edge snapshot's copy, read back by analyze_faces; a
    frame of a video carries exactly the metadata it always did."""
    from dataclasses import replace

    from vidsift.core.records import ALERT_ONLY_KEY

    assert ALERT_ONLY_KEY not in META.to_s3() and "clip-key" not in META.to_s3()
    assert not FrameMeta.from_s3(META.to_s3()).alert_only
    snap = replace(META, alert_only=True, clip_key="uploads/clip ü.mp4")
    s3 = snap.to_s3()
    assert s3[ALERT_ONLY_KEY] == "true" and all(v.isascii() for v in s3.values())
    assert FrameMeta.from_s3(s3) == snap
