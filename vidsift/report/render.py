"""``report.html``: one self-contained page per run.

Self-contained because it is mailed around and opened from disk: the CSS is inline, the
charts are inline SVG drawn here, and the thumbnails are downscaled JPEG data URIs, so the
page needs no network and no other file. There is no JavaScript: SVG ``<title>`` gives the
hover text and plain anchors link the timeline to the thumbnails.

Every piece of text from the run (file names, keys, error messages, attributes) goes
through ``_e``: a video may be called anything.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vidsift.report import cost as costs
from vidsift.report.data import RunData, Video

#: Thumbnails: longest side in pixels and JPEG quality; small enough that a report of a
#: long video stays a few MB, large enough to see who is in the frame.
THUMB_MAX_SIDE = 320
THUMB_QUALITY = 70
#: At most this many thumbnails per video, spread evenly over its frames with people.
MAX_THUMBS_PER_VIDEO = 60
#: A timeline has at most this many bars; longer videos are binned (max count per bin).
MAX_TIMELINE_BARS = 600
#: The visit timeline draws at most this many tracks (the longest visits) and shows at most
#: this many best-frame crops per video; both say so when they leave some out.
MAX_VISIT_ROWS = 80
MAX_TRACK_THUMBS = 60
#: Best-frame crops: longest side in pixels, and the margin around the person's box (a share
#: of the box's size on each side) so the crop shows where they stood.
TRACK_THUMB_MAX_SIDE = 200
TRACK_CROP_MARGIN = 0.25
VISIT_ROW_H = 14

TL_W, TL_H = 900, 150
TL_LEFT, TL_RIGHT, TL_TOP, TL_BOTTOM = 40, 26, 12, 30


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _n(x: float) -> str:
    """A coordinate: short, and exact enough to line boxes up to a tenth of a pixel."""
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    m, s = divmod(seconds, 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


# --------------------------------------------------------------------------- thumbnails


@dataclass(frozen=True)
class Thumb:
    """A frame shrunk and inlined as a data URI, so report.html is one file that opens anywhere."""

    data_uri: str
    width: int
    height: int


def thumbnail(path: Path, max_side: int = THUMB_MAX_SIDE, quality: int = THUMB_QUALITY) -> Thumb | None:
    """A downscaled JPEG of a frame as a data URI, or None when the frame cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            # A JPEG is decoded at 1/2, 1/4 or 1/8 of its size where the thumbnail stays at least
            # that large (libjpeg scales in its DCT): a 720p frame in a quarter of the time.
            scale = max_side / max(im.size)
            im.draft("RGB", (max(1, int(im.width * scale)), max(1, int(im.height * scale))))
            img = im.convert("RGB")
    except (OSError, UnidentifiedImageError):
        return None
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True)
    return Thumb("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), img.width, img.height)


def pick_evenly(items: Sequence[Any], k: int) -> list[Any]:
    """At most ``k`` items spread over the sequence, first and last included."""
    n = len(items)
    if n <= k:
        return list(items)
    if k <= 1:
        return list(items[:k])
    return [items[round(i * (n - 1) / (k - 1))] for i in range(k)]


@dataclass(frozen=True)
class Crop:
    """A thumbnail of part of a frame; ``left``..``height`` are that part in ratios of the frame."""

    thumb: Thumb
    left: float
    top: float
    width: float
    height: float


def crop_thumbnail(path: Path, box: dict[str, float] | None, max_side: int = TRACK_THUMB_MAX_SIDE,
                   margin: float = TRACK_CROP_MARGIN, quality: int = THUMB_QUALITY) -> Crop | None:
    """The part of a frame around ``box`` (ratios; the whole frame without one), downscaled
    to a data URI; None when the frame cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except (OSError, UnidentifiedImageError):
        return None
    left, top, width, height = 0.0, 0.0, 1.0, 1.0
    if box and all(isinstance(box.get(k), int | float) for k in ("left", "top", "width", "height")):
        bl, bt, bw, bh = (float(box[k]) for k in ("left", "top", "width", "height"))
        left, top = max(0.0, bl - margin * bw), max(0.0, bt - margin * bh)
        width = min(1.0, bl + bw + margin * bw) - left
        height = min(1.0, bt + bh + margin * bh) - top
        if width <= 0 or height <= 0:
            left, top, width, height = 0.0, 0.0, 1.0, 1.0
    W, H = img.size
    px = (round(left * W), round(top * H), max(round((left + width) * W), round(left * W) + 1),
          max(round((top + height) * H), round(top * H) + 1))
    img = img.crop(px)
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True)
    thumb = Thumb("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), img.width, img.height)
    return Crop(thumb, px[0] / W, px[1] / H, (px[2] - px[0]) / W, (px[3] - px[1]) / H)


# --------------------------------------------------------------------------- faces


def face_attributes(row: dict[str, Any]) -> str:
    """Age range, gender, emotion and smile in words, as a person would read them."""
    parts = []
    lo, hi = row.get("age_low"), row.get("age_high")
    if lo is not None or hi is not None:
        parts.append(f"age {'?' if lo is None else lo}–{'?' if hi is None else hi}")
    if row.get("gender"):
        gc = row.get("gender_confidence")
        parts.append(f"{row['gender']}" + (f" ({gc:.0f}%)" if isinstance(gc, int | float) else ""))
    if row.get("top_emotion"):
        parts.append(str(row["top_emotion"]).lower())
    if row.get("smile") is not None:
        parts.append("smiling" if row["smile"] else "not smiling")
    return ", ".join(parts) or "no attributes"


def track_attributes(track: dict[str, Any]) -> str:
    """Who a visit was, from its best face: the known person matched, age range, gender and
    emotion; or why there is nothing to say."""
    parts = []
    if track.get("matched_name"):
        sim = track.get("match_similarity")
        parts.append(f"{track['matched_name']}" + (f" ({float(sim):.0f}% match)" if sim is not None else ""))
    has_face = any(track.get(k) is not None for k in ("age_low", "age_high", "gender", "top_emotion"))
    if has_face:
        parts.append(face_attributes({k: track.get(k) for k in ("age_low", "age_high", "gender", "top_emotion")}))
    if not parts:
        if not (track.get("face_frames") or 0):
            return "no face analysed (too small or too brief)"
        return "no face found" if (track.get("faces") or 0) == 0 else "face without attributes"
    return ", ".join(parts)


def _box_of(text: Any) -> dict[str, float] | None:
    try:
        box = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    if isinstance(box, dict) and all(isinstance(box.get(k), int | float) for k in ("left", "top", "width", "height")):
        return box
    return None


def _boxes(row: dict[str, Any]) -> list[dict[str, float]]:
    try:
        boxes = json.loads(row.get("boxes") or "[]")
    except ValueError:
        return []
    return [b for b in boxes if isinstance(b, dict) and all(k in b for k in ("left", "top", "width", "height"))]


# --------------------------------------------------------------------------- timeline


def _interval(times: list[float], fps: float | None) -> float:
    diffs = [b - a for a, b in itertools.pairwise(times) if b > a]
    if diffs:
        return statistics.median(diffs)
    return 1 / fps if fps else 1.0


def _x_step(span: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span / step <= 10:
            return step
    return 3600 * math.ceil(span / 36000)


def _span(video: Video, fps: float | None) -> float:
    """The time axis of a video's charts: its duration, or to the end of its last frame."""
    times = [float(r["frame_time_s"] or 0.0) for r in sorted(video.people, key=lambda r: r["frame_index"])]
    interval = _interval(times, fps)
    return max(video.duration_s or 0.0, (times[-1] + interval) if times else 0.0, interval)


def timeline_svg(video: Video, anchors: dict[int, str], fps: float | None) -> str:
    """People per sampled frame over the video's time (bars), faces per frame (dots).

    Bars of frames shown as thumbnails link to them. Each bar carries its frame index,
    time and count as data attributes and a hover title.
    """
    rows = sorted(video.people, key=lambda r: r["frame_index"])
    times = [float(r["frame_time_s"] or 0.0) for r in rows]
    interval = _interval(times, fps)
    span = _span(video, fps)
    faces = {f: len(rs) for f, rs in video.faces_by_frame().items()}
    ymax = max([1, *(int(r["person_count"] or 0) for r in rows), *faces.values()])
    pw, ph = TL_W - TL_LEFT - TL_RIGHT, TL_H - TL_TOP - TL_BOTTOM
    base = TL_TOP + ph

    def x(t: float) -> float:
        return TL_LEFT + t / span * pw

    def y(v: float) -> float:
        return base - v / ymax * ph

    # Bin long videos: the bar of a bin is its frame with the most people.
    binned = len(rows) > MAX_TIMELINE_BARS
    bins: dict[int, dict[str, Any]] = {}
    for r, t in zip(rows, times, strict=True):
        b = int(t / span * MAX_TIMELINE_BARS) if binned else int(r["frame_index"])
        if b not in bins or (r["person_count"] or 0) > (bins[b]["person_count"] or 0):
            bins[b] = r
    bar_w = max(1.0, (pw / MAX_TIMELINE_BARS if binned else interval / span * pw) * 0.8)
    parts = [f'<svg class="timeline" role="img" viewBox="0 0 {TL_W} {TL_H}" preserveAspectRatio="none" '
             f'data-video-id="{_e(video.video_id)}" data-span="{_n(span)}" data-ymax="{ymax}" '
             f'aria-label="people per sampled frame over time">']
    parts.append(f'<rect class="plot" x="{TL_LEFT}" y="{TL_TOP}" width="{pw}" height="{ph}"/>')
    for v in sorted({0, ymax, *([ymax // 2] if ymax >= 4 else [])}):
        parts.append(f'<line class="grid" x1="{TL_LEFT}" x2="{TL_LEFT + pw}" y1="{_n(y(v))}" y2="{_n(y(v))}"/>'
                     f'<text class="ylab" x="{TL_LEFT - 6}" y="{_n(y(v) + 4)}">{v}</text>')
    step = _x_step(span)
    t = 0.0
    while t <= span + 1e-9:
        parts.append(f'<line class="xtick" x1="{_n(x(t))}" x2="{_n(x(t))}" y1="{base}" y2="{base + 4}"/>'
                     f'<text class="xlab" x="{_n(x(t))}" y="{base + 17}">{_e(_clock(t))}</text>')
        t += step
    for r in bins.values():
        frame, count = int(r["frame_index"]), int(r["person_count"] or 0)
        t0 = float(r["frame_time_s"] or 0.0)
        title = (f"{_clock(t0)} (frame {frame}): {count} {'person' if count == 1 else 'people'}, "
                 f"{faces.get(frame, 0)} face{'s' if faces.get(frame, 0) != 1 else ''}")
        if r.get("captured_at"):
            title += f", captured {r['captured_at']}"
        bar = (f'<rect class="bar" data-frame="{frame}" data-t="{_n(t0)}" data-people="{count}" '
               f'x="{_n(x(t0))}" y="{_n(y(count))}" width="{_n(bar_w)}" height="{_n(base - y(count))}">'
               f'<title>{_e(title)}</title></rect>')
        if frame in anchors:
            bar = f'<a href="#{anchors[frame]}">{bar}</a>'
        parts.append(bar)
    # A rug under the axis: the frames sent to detection (a gap: duplicates skipped, or a frame that failed).
    parts.append('<g class="rug">' + "".join(
        f'<line x1="{_n(x(float(r["frame_time_s"] or 0.0)) + bar_w / 2)}" '
        f'x2="{_n(x(float(r["frame_time_s"] or 0.0)) + bar_w / 2)}" y1="{base + 1}" y2="{base + 4}"/>'
        for r in bins.values()) + "</g>")
    for r in bins.values():
        frame = int(r["frame_index"])
        if faces.get(frame):
            parts.append(f'<circle class="facedot" data-frame="{frame}" data-faces="{faces[frame]}" '
                         f'cx="{_n(x(float(r["frame_time_s"] or 0.0)) + bar_w / 2)}" cy="{_n(y(faces[frame]))}" '
                         f'r="3.5"><title>{faces[frame]} face{"s" if faces[frame] != 1 else ""}</title></circle>')
    parts.append(f'<line class="axis" x1="{TL_LEFT}" x2="{TL_LEFT + pw}" y1="{base}" y2="{base}"/>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- visits


def _track_anchor(i: int, track: dict[str, Any]) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(track.get("track_id") or "t"))
    return f"v{i}-t-{safe}"


def _path_times(track: dict[str, Any]) -> list[float]:
    try:
        path = json.loads(track.get("path") or "[]")
    except (TypeError, ValueError):
        return []
    return [float(p[0]) for p in path if isinstance(p, list) and p and isinstance(p[0], int | float)]


def _visit_title(track: dict[str, Any]) -> str:
    first, last = float(track.get("first_seen_s") or 0.0), float(track.get("last_seen_s") or 0.0)
    dur = track.get("duration_s")
    dur = float(dur) if dur is not None else last - first
    frames = int(track.get("frames") or 0)
    title = (f"{track.get('track_id')}: {_clock(first)}–{_clock(last)} ({dur:.1f} s), "
             f"{frames} detection{'s' if frames != 1 else ''}")
    if track.get("gap_frames"):
        title += f", {int(track['gap_frames'])} frame(s) lost in between"
    title += f"; {track_attributes(track)}"
    if track.get("captured_at_first"):
        title += f"; from {track['captured_at_first']}"
    return title


def visits_svg(video: Video, tracks: list[dict[str, Any]], anchors: dict[str, str], span: float) -> str:
    """One row per visit (track), a bar from first to last seen on the same time axis as the
    people timeline; ticks on the bar are the frames the person was detected in. Bars of
    visits with a thumbnail link to it."""
    rows = sorted(tracks, key=lambda t: (float(t.get("first_seen_s") or 0.0), str(t.get("track_id"))))
    pw = TL_W - TL_LEFT - TL_RIGHT
    height = TL_TOP + len(rows) * VISIT_ROW_H + TL_BOTTOM
    base = TL_TOP + len(rows) * VISIT_ROW_H
    span = max(span, max((float(t.get("last_seen_s") or 0.0) for t in rows), default=0.0), 1.0)

    def x(t: float) -> float:
        return TL_LEFT + t / span * pw

    parts = [f'<svg class="visits" role="img" viewBox="0 0 {TL_W} {height}" preserveAspectRatio="none" '
             f'style="height:{height}px" data-video-id="{_e(video.video_id)}" data-span="{_n(span)}" '
             f'data-tracks="{len(rows)}" aria-label="visits: one bar per person tracked, from first to last seen">',
             f'<rect class="plot" x="{TL_LEFT}" y="{TL_TOP}" width="{pw}" height="{base - TL_TOP}"/>']
    step = _x_step(span)
    t = 0.0
    while t <= span + 1e-9:
        parts.append(f'<line class="grid" x1="{_n(x(t))}" x2="{_n(x(t))}" y1="{TL_TOP}" y2="{base}"/>'
                     f'<text class="xlab" x="{_n(x(t))}" y="{base + 17}">{_e(_clock(t))}</text>')
        t += step
    for n, tr in enumerate(rows):
        first, last = float(tr.get("first_seen_s") or 0.0), float(tr.get("last_seen_s") or 0.0)
        y = TL_TOP + n * VISIT_ROW_H
        x0, w = x(first), max(3.0, x(last) - x(first))
        tid = str(tr.get("track_id") or "")
        cls = "visit known" if tr.get("matched_name") else "visit withface" if (tr.get("faces") or 0) > 0 else "visit"
        bar = (f'<rect class="{cls}" data-track="{_e(tid)}" data-first="{_n(first)}" data-last="{_n(last)}" '
               f'x="{_n(x0)}" y="{y + 2}" width="{_n(w)}" height="{VISIT_ROW_H - 4}">'
               f"<title>{_e(_visit_title(tr))}</title></rect>")
        ticks = "".join(f'<line x1="{_n(x(pt))}" x2="{_n(x(pt))}" y1="{y + 3}" y2="{y + VISIT_ROW_H - 3}"/>'
                        for pt in _path_times(tr))
        if ticks:
            bar += f'<g class="seen">{ticks}</g>'
        if tid in anchors:
            bar = f'<a href="#{anchors[tid]}">{bar}</a>'
        parts.append(f'<text class="ylab" x="{TL_LEFT - 4}" y="{y + VISIT_ROW_H - 3}">{_e(tid)}</text>{bar}')
    parts.append(f'<line class="axis" x1="{TL_LEFT}" x2="{TL_LEFT + pw}" y1="{base}" y2="{base}"/></svg>')
    return "".join(parts)


def track_figure(track: dict[str, Any], anchor: str, crop: Crop | None) -> str:
    """A visit's best frame, cropped around the person (their box drawn), with who it was."""
    box = _box_of(track.get("best_box"))
    if crop:
        w, h = crop.thumb.width, crop.thumb.height
    else:
        w, h = TRACK_THUMB_MAX_SIDE // 2, TRACK_THUMB_MAX_SIDE
    tid = str(track.get("track_id") or "")
    first, last = float(track.get("first_seen_s") or 0.0), float(track.get("last_seen_s") or 0.0)
    dur = track.get("duration_s")
    dur = float(dur) if dur is not None else last - first
    attrs = track_attributes(track)
    caption = f"{tid} · {_clock(first)}–{_clock(last)} · {dur:.0f} s"
    parts = [f'<figure class="track" id="{anchor}" data-track="{_e(tid)}" '
             f'data-best-frame="{_e(track.get("best_frame_key"))}">',
             f'<svg class="crop" viewBox="0 0 {w} {h}" data-width="{w}" data-height="{h}" role="img" '
             f'aria-label="{_e(caption)}" style="width:{w}px">']
    if crop:
        parts.append(f'<image href="{crop.thumb.data_uri}" x="0" y="0" width="{w}" height="{h}" '
                     f'preserveAspectRatio="none"/>')
        if box:
            bx, by = (box["left"] - crop.left) / crop.width * w, (box["top"] - crop.top) / crop.height * h
            bw, bh = box["width"] / crop.width * w, box["height"] / crop.height * h
            conf = box.get("confidence")
            title = f"{tid}" + (f", confidence {float(conf):.2f}" if conf is not None else "")
            parts.append(f'<rect class="person" x="{_n(bx)}" y="{_n(by)}" width="{_n(bw)}" height="{_n(bh)}">'
                         f"<title>{_e(title)}</title></rect>")
    else:
        parts.append(f'<rect class="missing" width="{w}" height="{h}"/>'
                     f'<text class="missing" x="{w / 2}" y="{h / 2}">no image</text>')
    parts.append("</svg>")
    parts.append(f'<figcaption>{_e(caption)}</figcaption><p class="who">{_e(attrs)}</p></figure>')
    return "".join(parts)


# --------------------------------------------------------------------------- frames


def frame_figure(video: Video, row: dict[str, Any], faces: list[dict[str, Any]], anchor: str,
                 thumb: Thumb | None) -> str:
    """A thumbnail with its person boxes and face boxes drawn over it (ratios of the frame)."""
    frame, t = int(row["frame_index"]), float(row["frame_time_s"] or 0.0)
    if thumb:
        w, h = thumb.width, thumb.height
    else:
        fw, fh = int(video.summary.get("width") or 4), int(video.summary.get("height") or 3)
        w, h = THUMB_MAX_SIDE, max(1, round(THUMB_MAX_SIDE * fh / max(1, fw)))
    count = int(row["person_count"] or 0)
    caption = (f"{_clock(t)} · frame {frame} · {count} {'person' if count == 1 else 'people'} · "
               f"{len(faces)} face{'s' if len(faces) != 1 else ''}")
    parts = [f'<figure class="frame" id="{anchor}" data-frame="{frame}">',
             f'<svg class="thumb" viewBox="0 0 {w} {h}" data-width="{w}" data-height="{h}" '
             f'role="img" aria-label="{_e(caption)}">']
    if thumb:
        parts.append(f'<image href="{thumb.data_uri}" x="0" y="0" width="{w}" height="{h}" '
                     f'preserveAspectRatio="none"/>')
    else:
        parts.append(f'<rect class="missing" width="{w}" height="{h}"/>'
                     f'<text class="missing" x="{w / 2}" y="{h / 2}">frame image missing</text>')
    for i, b in enumerate(_boxes(row)):
        conf = b.get("confidence")
        title = f"person {i + 1}" + (f", confidence {float(conf):.2f}" if conf is not None else "")
        parts.append(f'<rect class="person" data-left="{b["left"]}" data-top="{b["top"]}" '
                     f'data-width="{b["width"]}" data-height="{b["height"]}" '
                     f'x="{_n(b["left"] * w)}" y="{_n(b["top"] * h)}" width="{_n(b["width"] * w)}" '
                     f'height="{_n(b["height"] * h)}"><title>{_e(title)}</title></rect>')
    items = []
    for f in faces:
        if f.get("bbox_left") is None or f.get("bbox_width") is None:
            continue
        idx = int(f.get("face_index") or 0)
        text = face_attributes(f)
        conf = f.get("confidence")
        title = f"face {idx + 1}: {text}" + (f" (confidence {float(conf):.0f})" if conf is not None else "")
        parts.append(f'<rect class="face" data-face="{idx}" data-left="{f["bbox_left"]}" data-top="{f["bbox_top"]}" '
                     f'data-width="{f["bbox_width"]}" data-height="{f["bbox_height"]}" '
                     f'x="{_n(f["bbox_left"] * w)}" y="{_n(f["bbox_top"] * h)}" '
                     f'width="{_n(f["bbox_width"] * w)}" height="{_n(f["bbox_height"] * h)}">'
                     f'<title>{_e(title)}</title></rect>'
                     f'<text class="facenum" x="{_n(f["bbox_left"] * w + 2)}" y="{_n(f["bbox_top"] * h - 3)}">'
                     f'{idx + 1}</text>')
        items.append(f'<li data-face="{idx}" title="{_e(title)}"><b>{idx + 1}</b> {_e(text)}</li>')
    parts.append("</svg>")
    parts.append(f"<figcaption>{_e(caption)}</figcaption>")
    if items:
        parts.append(f'<ul class="faces">{"".join(items)}</ul>')
    parts.append("</figure>")
    return "".join(parts)


# --------------------------------------------------------------------------- tables


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:,}" if isinstance(value, int) else _e(value)


def totals_table(data: RunData) -> str:
    """The report's first table: one row per video with its status and counts, each linking to its section."""
    head = ("video", "status", "duration", "frames sampled", "duplicates skipped", "frames with people",
            "people (visits)", "faces", "errors")
    rows = []
    for i, v in enumerate(data.videos):
        status = "ok" if v.ok and not v.errors else "failed"
        rows.append(f'<tr class="{status}"><td><a href="#v{i}">{_e(v.file)}</a></td><td>{status}</td>'
                    f'<td>{_e(_clock(v.duration_s)) if v.duration_s is not None else "–"}</td>'
                    f'<td data-k="frames_sampled">{_num(v.frames_sampled)}</td>'
                    f'<td data-k="duplicates_skipped">{_num(v.duplicates_skipped)}</td>'
                    f'<td data-k="frames_with_people">{_num(v.frames_with_people)}</td>'
                    f'<td data-k="unique_people">{_num(v.unique_people)}</td>'
                    f'<td data-k="faces">{_num(v.face_count)}</td><td data-k="errors">{_num(len(v.errors))}</td></tr>')
    dups = [v.duplicates_skipped for v in data.videos if v.duplicates_skipped is not None]
    total_dur = sum(v.duration_s or 0.0 for v in data.videos)
    n_err = sum(len(v.errors) for v in data.videos) + len(data.errors)
    people = [v.unique_people for v in data.videos if v.unique_people is not None]
    rows.append(f'<tr class="total"><th>total ({len(data.videos)} video{"s" if len(data.videos) != 1 else ""})</th>'
                f'<td>{sum(not (v.ok and not v.errors) for v in data.videos)} failed</td>'
                f"<td>{_e(_clock(total_dur))}</td>"
                f'<td data-k="frames_sampled">{_num(sum(v.frames_sampled for v in data.videos))}</td>'
                f'<td data-k="duplicates_skipped">{_num(sum(dups) if dups else None)}</td>'
                f'<td data-k="frames_with_people">{_num(sum(v.frames_with_people for v in data.videos))}</td>'
                f'<td data-k="unique_people">{_num(sum(people) if people else None)}</td>'
                f'<td data-k="faces">{_num(sum(v.face_count for v in data.videos))}</td>'
                f'<td data-k="errors">{_num(n_err)}</td></tr>')
    return (f'<table id="totals-table" class="num"><thead><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _qty(q: float, unit: str) -> str:
    if unit in ("GB-s", "s", "GB"):
        return f"{q:,.6g} {unit}"
    return f"{q:,.0f} {unit}" if q == int(q) else f"{q:,.1f} {unit}"


def cost_section(data: RunData, total: costs.Estimate, per_video: list[costs.Estimate]) -> str:
    """The cost estimate with every price linked to its source page, per run and per video, so a
    reader can check how each figure was reached."""
    p = total.prices
    lines = []
    for line in total.lines:
        pr = line.price
        value = "" if line.usd is None else f"{line.usd:.10f}"
        lines.append(f'<tr data-component="{_e(line.component)}"><td>{_e(line.component)}</td>'
                     f"<td>{_e(_qty(line.quantity, line.unit))}</td>"
                     f'<td><a href="{_e(pr.source)}" title="{_e(pr.what)}, as of {_e(pr.as_of)}">'
                     f"{_e(pr.label())}</a></td>"
                     f'<td data-usd="{value}">{_e(costs.usd(line.usd))}</td></tr>')
    per_min = costs.usd(total.per_minute) if total.per_minute is not None else "–"
    partial = "" if total.complete else " (Lambda and SageMaker not measured: no run.json)"
    lines.append(f'<tr class="total"><th colspan="3">total{partial}</th>'
                 f'<td data-usd="{total.total:.10f}" id="cost-total">{_e(costs.usd(total.total))}</td></tr>')
    u = total.usage
    ratio = total.avoided_ratio
    compare = [
        ("this pipeline (estimate above)", f"{u.detect_faces_images:,} DetectFaces calls", total.total),
        ("DetectFaces on every sampled frame (no person filter, no duplicate skipping)",
         f"{u.frames_sampled:,} images", total.every_frame_detect_faces),
        ("Rekognition Video stored-video face detection", f"{total.video_minutes:,.2f} video minutes",
         total.rekognition_video),
    ]
    compare_rows = "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(costs.usd(c))}</td>"
                           f"<td>{_e(costs.usd(c / total.video_minutes) if total.video_minutes else '–')}</td></tr>"
                           for a, b, c in compare)
    tracking = (f', <b data-avoided="tracking">{total.avoided_by_tracking:,}</b> frames of a person already '
                f'analysed (the tracker sends only each visit\'s chosen frames: <b data-k="tracks">{u.tracks:,}</b> '
                f'visit{"s" if u.tracks != 1 else ""})' if u.tracked_videos else "")
    filters = "The tracker, the person filter" if u.tracked_videos else "The person filter"
    saving = (f'<p id="saving">{filters} and duplicate skipping sent <b>{u.detect_faces_images:,}</b> of '
              f'<b>{u.frames_sampled:,}</b> sampled frames to DetectFaces: <b>{total.detect_faces_avoided:,}</b> '
              f'calls avoided (<b data-ratio="{ratio:.6f}">{ratio:.0%}</b>): '
              f'<b data-avoided="dedup">{total.avoided_by_dedup:,}</b> near-duplicate frames skipped before '
              f'detection, <b data-avoided="person-filter">{total.avoided_by_person_filter:,}</b> frames in '
              f'which the detector found nobody{tracking}.</p>' if ratio is not None else "")
    video_rows = []
    for i, (v, est) in enumerate(zip(data.videos, per_video, strict=True)):
        video_rows.append(
            f'<tr data-video="{i}"><td><a href="#v{i}">{_e(v.file)}</a></td>'
            f"<td>{est.video_minutes:,.2f}</td><td>{_e(costs.usd(est.total))}</td>"
            f"<td>{_e(costs.usd(est.per_minute)) if est.per_minute is not None else '–'}</td>"
            f"<td>{est.usage.detect_faces_images:,} / {est.usage.frames_sampled:,}</td>"
            f"<td>{_e(costs.usd(est.every_frame_detect_faces))}</td><td>{_e(costs.usd(est.rekognition_video))}</td></tr>")
    assumptions = "".join(f"<li>{_e(a)}</li>" for a in costs.ASSUMPTIONS)
    return f"""<section id="cost"><h2>Estimated AWS cost</h2>
<p class="note">What this run would cost on AWS ({_e(p.region)}, list prices as of {_e(p.as_of)} from
<code>vidsift/report/prices.json</code>; <b>check them against the AWS pricing pages</b>) with the settings it ran
with. Total {_e(costs.usd(total.total))} for {total.video_minutes:,.2f} video minutes: <b>{_e(per_min)} per video
minute</b>.</p>
<table id="cost-table" class="num"><thead><tr><th>component</th><th>quantity</th><th>unit price</th><th>cost</th></tr>
</thead><tbody>{"".join(lines)}</tbody></table>
<h3>Compared with</h3>{saving}
<table id="compare-table" class="num"><thead><tr><th></th><th>billed for</th><th>cost</th><th>per video minute</th>
</tr></thead><tbody>{compare_rows}</tbody></table>
<h3>Per video</h3>
<table id="video-cost-table" class="num"><thead><tr><th>video</th><th>minutes</th><th>estimate</th>
<th>per minute</th><th>DetectFaces calls / frames sampled</th><th>DetectFaces every frame</th>
<th>Rekognition Video</th></tr></thead><tbody>{"".join(video_rows)}</tbody></table>
<details><summary>How it is estimated</summary><ul>{assumptions}</ul></details></section>"""


# --------------------------------------------------------------------------- page


def _longest(tracks: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """At most ``k`` tracks, the longest visits, kept in time order."""
    if len(tracks) <= k:
        return list(tracks)
    keep = sorted(range(len(tracks)), key=lambda n: (-float(tracks[n].get("duration_s") or 0.0), n))[:k]
    return [tracks[n] for n in sorted(keep)]


def visits_section(i: int, v: Video, data: RunData, max_track_thumbs: int = MAX_TRACK_THUMBS) -> str:
    """The video's people: how many, their visits on a timeline, and each one's best frame."""
    tracks = v.tracks
    drawn = _longest(tracks, MAX_VISIT_ROWS)
    shown = _longest(tracks, max_track_thumbs)
    anchors = {str(t.get("track_id") or ""): _track_anchor(i, t) for t in shown}
    fps = data.settings.get("fps")
    span = _span(v, float(fps) if fps else None)
    known = sorted({str(t["matched_name"]) for t in tracks if t.get("matched_name")})
    with_face = sum(1 for t in tracks if (t.get("faces") or 0) > 0)
    n = len(tracks)
    summary = (f'<p class="people" data-unique-people="{n}"><b>{n}</b> {"person" if n == 1 else "people"} seen '
               f"(one per visit tracked), {with_face} with a face found"
               + (f", known: {_e(', '.join(known))}" if known else "") + "</p>")
    note = f" ({len(drawn)} longest of {n})" if len(drawn) < n else ""
    parts = [f"<h3>Visits{_e(note)}</h3>", summary,
             '<div class="legend"><span class="lg visit"></span> in view (first to last seen; ticks: detected) '
             '<span class="lg visit withface"></span> face found <span class="lg visit known"></span> known person '
             "· click a bar to see the person</div>",
             visits_svg(v, drawn, anchors, span)]
    frames_dir = data.out / "frames"
    note = f" ({len(shown)} longest of {n})" if len(shown) < n else ""
    parts.append(f'<h3>People, at their best frame{_e(note)}</h3><div class="tracks">')
    for t in shown:
        key = str(t.get("best_frame_key") or "")
        path = frames_dir / key if key and ".." not in key.split("/") else None
        crop = crop_thumbnail(path, _box_of(t.get("best_box"))) if path else None
        parts.append(track_figure(t, anchors[str(t.get("track_id") or "")], crop))
    parts.append("</div>")
    return "".join(parts)


def video_section(i: int, v: Video, data: RunData, est: costs.Estimate, max_thumbs: int,
                  max_track_thumbs: int = MAX_TRACK_THUMBS) -> str:
    """One video's section: summary, timeline of people, tracks and thumbnails of frames with people
    (evenly spread, so a long video's page stays small)."""
    fps = data.settings.get("fps")
    with_people = [r for r in sorted(v.people, key=lambda r: r["frame_index"]) if (r["person_count"] or 0) > 0]
    shown = pick_evenly(with_people, max_thumbs)
    anchors = {int(r["frame_index"]): f"v{i}-f{int(r['frame_index']):06d}" for r in shown}
    s = v.summary
    meta = []
    if v.video_id:
        meta.append(f"video id <code>{_e(v.video_id)}</code>")
    if v.duration_s is not None:
        meta.append(f"{_e(_clock(v.duration_s))} long")
    if s.get("width") and s.get("height"):
        meta.append(f"{_e(s['width'])}×{_e(s['height'])}" + (f" {_e(s['codec'])}" if s.get("codec") else ""))
    if s.get("frames_decoded") is not None:
        meta.append(f"{_num(s['frames_decoded'])} frames decoded")
    meta.append(f"{_num(v.frames_sampled)} sampled")
    if v.duplicates_skipped is not None:
        meta.append(f"{_num(v.duplicates_skipped)} duplicates skipped")
    meta.append(f"{_num(v.frames_with_people)} with people, {_num(v.face_count)} faces")
    if v.unique_people is not None:
        meta.append(f"{_num(v.unique_people)} {'person' if v.unique_people == 1 else 'people'} (visits tracked)")
    if v.segments > 1:
        meta.append(f"split in {v.segments} parallel segments")
    meta.append(f"estimated {_e(costs.usd(est.total))}"
                + (f" ({_e(costs.usd(est.per_minute))}/min)" if est.per_minute is not None else ""))
    errors = "".join(f"<li>{_e(err)}</li>" for err in v.errors)
    parts = [f'<section class="video" id="v{i}" data-video-id="{_e(v.video_id)}">',
             f'<h2 class="file">{_e(v.file)}</h2>',
             f'<p class="meta">{" · ".join(meta)}</p>']
    if v.key and v.key != v.file:
        parts.append(f'<p class="key">key <code>{_e(v.key)}</code></p>')
    if errors:
        parts.append(f'<ul class="errors">{errors}</ul>')
    if v.people:
        parts.append('<h3>People over time</h3><div class="legend"><span class="lg bar"></span> people in the frame '
                     '<span class="lg dot"></span> faces analysed · click a bar to see its frame</div>')
        parts.append(timeline_svg(v, anchors, float(fps) if fps else None))
    if v.tracks:
        parts.append(visits_section(i, v, data, max_track_thumbs))
    if shown:
        note = (f" ({len(shown)} of {len(with_people)}, spread over the video)" if len(shown) < len(with_people)
                else "")
        parts.append(f"<h3>Frames with people{_e(note)}</h3>"
                     '<div class="legend"><span class="lg person"></span> person '
                     '<span class="lg face"></span> face (hover for attributes)</div><div class="frames">')
        faces = v.faces_by_frame()
        frames_dir = data.out / "frames" / str(v.video_id)
        for r in shown:
            f = int(r["frame_index"])
            parts.append(frame_figure(v, r, faces.get(f, []), anchors[f], thumbnail(frames_dir / f"{f:06d}.jpg")))
        parts.append("</div>")
    elif v.people:
        parts.append('<p class="none">No people in any sampled frame.</p>')
    parts.append("</section>")
    return "".join(parts)


CSS = """
:root{--ink:#1d2430;--mute:#5d6675;--line:#d9dee7;--bg:#f6f7f9;--bar:#4c78a8;--dot:#e45756;
--person:#00e676;--face:#ff4081}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);
background:var(--bg)}main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 6px;word-break:break-all}h3{font-size:15px;
margin:18px 0 6px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:6px 18px 16px;margin:16px 0}
.meta,.note,.key,.sub{color:var(--mute)}code{font-size:12px;word-break:break-all}
table{border-collapse:collapse;margin:6px 0;width:100%}th,td{border-bottom:1px solid var(--line);padding:4px 8px;
text-align:left;vertical-align:top}table.num td+td,table.num th+th{text-align:right}
tr.total th,tr.total td{font-weight:600;border-top:2px solid var(--ink)}tr.failed td:nth-child(2){color:#b00020}
td a{color:inherit}.errors{color:#b00020}.errors li{word-break:break-all}
svg.timeline{width:100%;height:170px;display:block}
svg.timeline .plot{fill:#fbfcfd}svg.timeline .grid{stroke:#e6e9ef}svg.timeline .axis,svg.timeline .xtick{stroke:#8a93a3}
svg.timeline text{font-size:11px;fill:var(--mute)}svg.timeline .ylab{text-anchor:end}
svg.timeline .xlab{text-anchor:middle}
svg.timeline .bar{fill:var(--bar)}svg.timeline .rug line{stroke:var(--bar);stroke-width:1.5}
svg.timeline a:hover .bar{fill:#2a4f78}svg.timeline .facedot{fill:var(--dot)}
.frames{display:flex;flex-wrap:wrap;gap:14px}figure.frame{margin:0;width:320px}
svg.thumb{width:320px;height:auto;display:block;background:#222;border-radius:4px;overflow:hidden}
svg.thumb rect.person{fill:none;stroke:var(--person);stroke-width:2;vector-effect:non-scaling-stroke}
svg.thumb rect.face{fill:rgba(255,64,129,.08);stroke:var(--face);stroke-width:2;vector-effect:non-scaling-stroke}
svg.thumb rect.missing{fill:#444}svg.thumb text.missing{fill:#ddd;font-size:14px;text-anchor:middle}
svg.thumb .facenum{fill:#fff;font-size:11px;font-weight:700;paint-order:stroke;stroke:#000;stroke-width:2px}
figcaption{font-size:12px;color:var(--mute);margin-top:3px}ul.faces{margin:2px 0 0;padding-left:0;list-style:none;
font-size:12px}ul.faces b{display:inline-block;min-width:14px;color:var(--face)}
.legend{font-size:12px;color:var(--mute)}.lg{display:inline-block;width:12px;height:10px;margin:0 3px 0 10px;
vertical-align:middle}.lg.bar{background:var(--bar)}.lg.dot{background:var(--dot);border-radius:50%}
.lg.person{border:2px solid var(--person)}.lg.face{border:2px solid var(--face)}
details{margin-top:10px;color:var(--mute)}details li{margin:3px 0}
svg.visits{width:100%;display:block}svg.visits .plot{fill:#fbfcfd}svg.visits .grid{stroke:#eef0f4}
svg.visits .axis{stroke:#8a93a3}svg.visits text{font-size:10px;fill:var(--mute)}svg.visits .ylab{text-anchor:end}
svg.visits .xlab{text-anchor:middle;font-size:11px}svg.visits .visit{fill:#9ab6d3}
svg.visits .visit.withface{fill:var(--bar)}
svg.visits .visit.known{fill:#2e7d32}svg.visits .seen line{stroke:#fff;stroke-width:1;opacity:.7}
svg.visits a:hover .visit{fill:#2a4f78}
.tracks{display:flex;flex-wrap:wrap;gap:12px}figure.track{margin:0;max-width:200px}
svg.crop{height:auto;max-width:200px;display:block;background:#222;border-radius:4px;overflow:hidden}
svg.crop rect.person{fill:none;stroke:var(--person);stroke-width:2;vector-effect:non-scaling-stroke}
svg.crop rect.missing{fill:#444}svg.crop text.missing{fill:#ddd;font-size:12px;text-anchor:middle}
p.who{font-size:12px;margin:1px 0 0}.lg.visit{background:#9ab6d3}.lg.visit.withface{background:var(--bar)}
.lg.visit.known{background:#2e7d32}
"""


def render(data: RunData, *, prices: costs.Prices | None = None, max_thumbs: int = MAX_THUMBS_PER_VIDEO,
           max_track_thumbs: int = MAX_TRACK_THUMBS, now: datetime | None = None) -> str:
    """The whole report.html as one self-contained page (thumbnails inlined), so it can be mailed or
    opened anywhere without the results folder."""
    total, per_video = costs.run_estimates(data, prices)
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    settings = data.settings
    sampling = ("keyframes" if settings.get("keyframes") else f"{settings['fps']:g} frame(s) per second"
                if settings.get("fps") else "unknown sampling (no run.json)")
    models = sorted({str(r["detector"]) for v in data.videos for r in v.people if r.get("detector")}
                    | {str(r["analyzer"]) for v in data.videos for r in v.faces if r.get("analyzer")})
    run_errors = "".join(f"<li>{_e(err)}</li>" for err in data.errors)
    body = [f"<header><h1>vidsift run report</h1><p class=\"sub\">{len(data.videos)} video(s) from "
            f"<code>{_e(data.out.resolve())}</code> · sampled at {_e(sampling)}"
            + (f" · models: {_e(', '.join(models))}" if models else "") + f" · generated {_e(when)}</p></header>",
            f'<section id="totals"><h2>Totals</h2>{totals_table(data)}'
            + (f'<h3>Errors not tied to a video</h3><ul class="errors">{run_errors}</ul>' if run_errors else "")
            + "</section>",
            cost_section(data, total, per_video)]
    from vidsift.report import lines

    body.append(lines.cameras_section(data.layout, [t for v in data.videos for t in v.tracks], data.crossings,
                                      data.zone_visits, data.out / "frames"))
    from vidsift.report.visitors import section as visitors_section

    body.append(visitors_section(data.out))  # "" unless the run recognised visitors (opt-in)
    body += [video_section(i, v, data, est, max_thumbs, max_track_thumbs)
             for i, (v, est) in enumerate(zip(data.videos, per_video, strict=True))]
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>vidsift report: {len(data.videos)} video(s)</title><style>{CSS}{lines.CSS}</style></head>"
            f'<body><main>{"".join(body)}</main></body></html>\n')
