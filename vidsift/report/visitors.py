"""The report's visitors section (opt-in ``vidsift run --visitors``): each visitor with their
thumbnail, visit count, first and last seen and cameras, returning visitors marked. Empty
when the results folder has no visitors."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any


def section(out: Path, max_side: int = 96) -> str:
    """The report's visitors section (faces and visit counts) from the folder's saved visitors
    state; "" when the run had visitors off."""
    from vidsift.local.visitors import LocalStore, registry_file
    from vidsift.report.render import thumbnail
    from vidsift.stages import visitor_admin

    if not registry_file(out).exists():
        return ""
    rows: list[dict[str, Any]] = visitor_admin.list_visitors(LocalStore(out))
    if not rows:
        return ""
    e = html.escape
    items = []
    for r in rows:
        thumb = thumbnail(Path(r["thumbnail"]), max_side) if r["thumbnail"] else None
        img = (f'<img src="{thumb.data_uri}" width="{thumb.width}" height="{thumb.height}" alt="">' if thumb
               else '<span class="nothumb">no face kept</span>')
        who = e(r["visitor_id"]) + (f" · {e(r['name'])}" if r["name"] else "")
        mark = ' class="returning"' if r["returning"] else ""
        items.append(f"<tr{mark}><td>{img}</td><td>{who}</td><td>{r['visits']}"
                     f"{' (returning)' if r['returning'] else ''}</td><td>{e(r['status'])}</td>"
                     f"<td>{e(r['first_seen'] or '')}</td><td>{e(r['last_seen'] or '')}</td>"
                     f"<td>{e(', '.join(r['cameras']))}</td></tr>")
    returning = sum(r["returning"] for r in rows)
    return (f'<section id="visitors"><h2>Visitors</h2><p class="sub">{len(rows)} visitor(s), {returning} '
            f"returning (more than one visit); recognised by their faces (opt-in)</p>"
            "<table><tr><th></th><th>visitor</th><th>visits</th><th>status</th><th>first seen</th>"
            f"<th>last seen</th><th>cameras</th></tr>{''.join(items)}</table></section>")
