"""The report's lines and zones: per camera, a frame with its lines (an arrow for ``in``) and
zones drawn, the counts beside them, and a heat map of where people walked.

Where people walked is each track's ``path`` (the tracks table keeps it: the feet are the
bottom centre of each box), so the heat map needs no frame but the one drawn under it: a
visit's best frame from the results folder when there is one, else a grey field of the
frame's shape. Inline SVG like the rest of the report: no script, no other file.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from vidsift.core.layout import CameraLayout, Layout, LayoutError, parse
from vidsift.core.lines import feet_from_path

#: The heat map's grid (cells across, down) over the frame.
HEAT_COLS, HEAT_ROWS = 48, 36
CAMERA_VIEW_W = 640
LAYOUT_FILE = "cameras.json"


def load_layout(out: Path) -> Layout | None:
    """The layout a run counted with (``cameras.json`` in the results folder), if any."""
    path = Path(out) / LAYOUT_FILE
    if not path.is_file():
        return None
    try:
        return parse(json.loads(path.read_text()), str(path))
    except (ValueError, LayoutError):
        return None


def _e(value: Any) -> str:
    import html

    return html.escape("" if value is None else str(value), quote=True)


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def heat_cells(tracks: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """Feet positions per grid cell, from every track's path."""
    cells: dict[tuple[int, int], int] = defaultdict(int)
    for t in tracks:
        try:
            feet = feet_from_path(t.get("path") or "[]")
        except (TypeError, ValueError):
            continue
        for _, x, y in feet:
            if 0 <= x <= 1 and 0 <= y <= 1:
                cells[(min(HEAT_COLS - 1, int(x * HEAT_COLS)), min(HEAT_ROWS - 1, int(y * HEAT_ROWS)))] += 1
    return cells


def _arrow(camera_line: Any, w: float, h: float) -> tuple[float, float, float, float]:
    """From the middle of the line towards where ``in`` goes (away from in_from), in pixels."""
    (ax, ay), (bx, by) = camera_line.a, camera_line.b
    mx, my = (ax + bx) / 2 * w, (ay + by) / 2 * h
    dx, dy = (bx - ax) * w, (by - ay) * h
    nx, ny = -dy, dx
    norm = math.hypot(nx, ny) or 1.0
    nx, ny = nx / norm, ny / norm
    sx, sy = camera_line.in_from[0] * w - mx, camera_line.in_from[1] * h - my
    if nx * sx + ny * sy > 0:  # the normal points to in_from's side: turn it round
        nx, ny = -nx, -ny
    length = 0.08 * min(w, h)
    return mx - nx * length * 0.5, my - ny * length * 0.5, mx + nx * length, my + ny * length


def camera_svg(camera: CameraLayout, tracks: list[dict[str, Any]], counts: dict[str, str],
               background: Any = None, size: tuple[int, int] = (640, 480)) -> str:
    """``counts``: the text beside each line and zone, by name. ``background``: a Thumb."""
    w, h = (background.width, background.height) if background else size
    parts = [f'<svg class="camera" viewBox="0 0 {w} {h}" role="img" data-camera="{_e(camera.camera_id)}">'
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="5" markerHeight="5" '
             'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#ffd54f"/></marker></defs>']
    if background:
        parts.append(f'<image href="{background.data_uri}" x="0" y="0" width="{w}" height="{h}"/>')
    else:
        parts.append(f'<rect class="field" x="0" y="0" width="{w}" height="{h}"/>')
    cells = heat_cells(tracks)
    top = max(cells.values(), default=0)
    cw, ch = w / HEAT_COLS, h / HEAT_ROWS
    parts.append('<g class="heat">')
    for (cx, cy), n in sorted(cells.items()):
        parts.append(f'<rect x="{_f(cx * cw)}" y="{_f(cy * ch)}" width="{_f(cw)}" height="{_f(ch)}" '
                     f'fill-opacity="{0.15 + 0.6 * math.sqrt(n / top):.2f}"><title>{n} position(s)</title></rect>')
    parts.append("</g>")
    for z in camera.zones:
        pts = " ".join(f"{_f(x * w)},{_f(y * h)}" for x, y in z.polygon)
        lx = min(x for x, _ in z.polygon) * w + 4
        ly = min(y for _, y in z.polygon) * h + 14
        parts.append(f'<g class="zone" data-zone="{_e(z.name)}"><polygon points="{pts}"/>'
                     f'<text x="{_f(lx)}" y="{_f(ly)}">{_e(z.name)}: {_e(counts.get(z.name, ""))}</text></g>')
    for ln in camera.lines:
        x1, y1, x2, y2 = _arrow(ln, w, h)
        (ax, ay), (bx, by) = ln.a, ln.b
        tx, ty = max(ax, bx) * w + 6, min(ay, by) * h + 14
        parts.append(f'<g class="line" data-line="{_e(ln.name)}">'
                     f'<line x1="{_f(ax * w)}" y1="{_f(ay * h)}" x2="{_f(bx * w)}" y2="{_f(by * h)}"/>'
                     f'<line class="in" x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" '
                     f'marker-end="url(#arrow)"><title>in</title></line>'
                     f'<text x="{_f(min(tx, w - 150))}" y="{_f(ty)}">{_e(ln.name)}: {_e(counts.get(ln.name, ""))}'
                     "</text></g>")
    parts.append("</svg>")
    return "".join(parts)


def cameras_section(layout: Layout | None, tracks: list[dict[str, Any]], crossings: list[dict[str, Any]],
                    visits: list[dict[str, Any]], frames_dir: Path | None = None) -> str:
    """The lines-and-zones section: one figure per camera with a layout; '' when none has one."""
    if layout is None or not layout.cameras:
        return ""
    from vidsift.report.render import thumbnail

    parts = ['<section id="lines"><h2>Lines and zones</h2>'
             '<p class="note">Per camera: its lines (the arrow points the way <em>in</em>) and zones, the counts, '
             "and where people walked (the feet of every visit, darker where more often).</p>"]
    for cid, camera in sorted(layout.cameras.items()):
        cam_tracks = [t for t in tracks if t.get("camera_id") == cid]
        counts: dict[str, str] = {}
        for ln in camera.lines:
            rows = [r for r in crossings if r.get("camera_id") == cid and r.get("line") == ln.name]
            n_in = sum(r.get("direction") == "in" for r in rows)
            counts[ln.name] = f"{n_in} in, {len(rows) - n_in} out"
        for z in camera.zones:
            rows = [r for r in visits if r.get("camera_id") == cid and r.get("zone") == z.name]
            mean = sum(float(r.get("dwell_s") or 0) for r in rows) / len(rows) if rows else 0.0
            counts[z.name] = f"{len(rows)} visit(s)" + (f", mean {mean:.1f} s" if rows else "")
        background = None
        if frames_dir is not None:
            for t in sorted(cam_tracks, key=lambda t: -float(t.get("max_box_height") or 0)):
                key = str(t.get("best_frame_key") or "")
                if key and ".." not in key.split("/") and (frames_dir / key).is_file():
                    background = thumbnail(frames_dir / key, max_side=CAMERA_VIEW_W)
                    if background:
                        break
        table = "".join(f"<tr><td>{_e(name)}</td><td>{_e(text)}</td></tr>" for name, text in counts.items())
        parts.append(f'<figure class="camera"><h3>camera {_e(cid)}</h3>'
                     f"{camera_svg(camera, cam_tracks, counts, background)}"
                     f'<figcaption>{len(cam_tracks)} visit(s) drawn'
                     + ("" if background else " (no frame of this camera in the results: a grey field)")
                     + f'</figcaption><table class="counts">{table}</table></figure>')
    parts.append("</section>")
    return "".join(parts)


CSS = """
svg.camera{width:100%;max-width:640px;height:auto;display:block;border-radius:4px;background:#333}
svg.camera rect.field{fill:#3b4250}svg.camera .heat rect{fill:#ff5722}
svg.camera .zone polygon{fill:rgba(66,165,245,.18);stroke:#42a5f5;stroke-width:2;vector-effect:non-scaling-stroke}
svg.camera .line line{stroke:#ffd54f;stroke-width:3;vector-effect:non-scaling-stroke}
svg.camera .line line.in{stroke-width:2}
svg.camera text{fill:#fff;font-size:14px;font-weight:600;paint-order:stroke;stroke:#000;stroke-width:3px}
figure.camera{margin:8px 0 18px}table.counts{max-width:640px}
"""
