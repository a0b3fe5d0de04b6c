"""``make demo``: build a short video from photos that ship in installed packages, run it
through the whole pipeline on the embedded local AWS, and show what came out."""

from __future__ import annotations

import sys
from pathlib import Path

from vidsift.cli.query import render
from vidsift.local.warehouse import run
from vidsift.testing.samples import DEMO_SEGMENTS, make_video

OUT = Path("demo-out")
RECORDED_AT = "2026-01-01T12:00:00Z"


def expected_photo(t: float) -> str:
    """Which photo the demo video shows at ``t`` seconds: the truth each sampled frame is checked against."""
    end = 0.0
    for seg in DEMO_SEGMENTS:
        end += seg.seconds
        if t < end:
            return seg.photo
    return DEMO_SEGMENTS[-1].photo


def main() -> int:
    """``make demo``: build the demo video, run it, and print each frame's people beside the truth;
    exit 1 when a frame disagrees, so the demo is also a check."""
    from vidsift.cli import main as cli

    OUT.mkdir(exist_ok=True)
    video = OUT / "demo video.mp4"  # a space in the name: keys are URL-encoded on the way
    if not video.exists():
        print(f"building {video} from bundled photos: {', '.join(s.photo for s in DEMO_SEGMENTS)}")
        make_video(video)
    code = cli(["run", str(video), "--out", str(OUT), "--camera-id", "demo-cam", "--recorded-at", RECORDED_AT])
    sql = ("SELECT frame_index, frame_time_s, person_count, round(max_confidence, 2) AS confidence, captured_at "
           "FROM people ORDER BY frame_index")
    print(f"\nvidsift query --out {OUT} \"{sql}\"\n")
    names, rows = run(OUT, sql)
    names.append("photo (truth)")
    rows = [(*r, expected_photo(r[1])) for r in rows]
    print(render(names, rows))
    wrong = [r for r in rows if (r[2] > 0) != (r[-1] in {s.photo for s in DEMO_SEGMENTS if s.has_people})]
    tracks_sql = ("SELECT track_id, first_seen_s, last_seen_s, frames, face_frames, faces, gender, age_low, "
                  "age_high, top_emotion FROM tracks ORDER BY first_seen_s")
    print(f"\nvidsift query --out {OUT} \"{tracks_sql}\"\n")
    print(render(*run(OUT, tracks_sql)))
    faces_sql = ("SELECT frame_index, face_index, round(confidence, 1) AS confidence, age_low, age_high, gender, "
                 "top_emotion, round(pose_yaw, 1) AS yaw, analyzer FROM faces ORDER BY frame_index, face_index")
    print(f"\nvidsift query --out {OUT} \"{faces_sql}\"\n")
    print(render(*run(OUT, faces_sql)))
    print(f"\n{len(rows) - len(wrong)} of {len(rows)} sampled frames agree with the truth of the video "
          f"(people in {', '.join(s.photo for s in DEMO_SEGMENTS if s.has_people)}; none in the others).")
    return code or (1 if wrong else 0)


if __name__ == "__main__":
    sys.exit(main())
