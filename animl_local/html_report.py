"""An execution report a person can read: the state machine coloured as the console colours it,
the per-state timeline, and the per-image table with thumbnails.

The page is static HTML and SVG; one small script counts the thumbnails that loaded (so a broken
relative path shows, and a browser test can see it). Everything shown is escaped.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Any

from animl_local.state_machine import load_definition

STATUS_COLOURS = {  # the console's palette, roughly
    "SUCCEEDED": "#2e7d32", "FAILED": "#c62828", "RUNNING": "#1565c0", "CAUGHT": "#ef6c00",
    "ABORTED": "#6d4c41", "TIMED_OUT": "#ad1457", "NOT_RUN": "#9e9e9e",
}
BOX_W, BOX_H, GAP_X, GAP_Y = 190, 34, 24, 26


def state_statuses(timeline: list[dict[str, Any]]) -> dict[str, str]:
    """The last status of each state entered (a state in a loop is entered many times)."""
    statuses: dict[str, str] = {}
    for row in timeline:
        statuses[row["state"]] = row["status"]
    return statuses


def layout(definition: dict[str, Any]) -> tuple[dict[str, tuple[int, int]], list[tuple[str, str]]]:
    """Depth-first layers from StartAt: (column, row) per state, and the edges."""
    states = definition["States"]
    edges: list[tuple[str, str]] = []
    for name, state in states.items():
        targets = [state.get("Next"), state.get("Default"),
                   *[c.get("Next") for c in state.get("Choices", [])],
                   *[c.get("Next") for c in state.get("Catch", [])]]
        edges += [(name, t) for t in dict.fromkeys(targets) if t]
    depth = {definition["StartAt"]: 0}
    frontier = [definition["StartAt"]]
    while frontier:
        current = frontier.pop(0)
        for source, target in edges:
            if source == current and target not in depth:
                depth[target] = depth[current] + 1
                frontier.append(target)
    for name in states:  # unreachable states still show
        depth.setdefault(name, max(depth.values()) + 1)
    columns: dict[int, int] = defaultdict(int)
    positions = {}
    for name in states:
        positions[name] = (columns[depth[name]], depth[name])
        columns[depth[name]] += 1
    return positions, edges


def graph_svg(definition: dict[str, Any], statuses: dict[str, str]) -> str:
    positions, edges = layout(definition)
    width = (max(c for c, _ in positions.values()) + 1) * (BOX_W + GAP_X) + GAP_X
    height = (max(r for _, r in positions.values()) + 1) * (BOX_H + GAP_Y) + GAP_Y

    def centre(name: str) -> tuple[float, float]:
        col, row = positions[name]
        return GAP_X + col * (BOX_W + GAP_X) + BOX_W / 2, GAP_Y + row * (BOX_H + GAP_Y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="state machine">']
    for source, target in edges:
        (x1, y1), (x2, y2) = centre(source), centre(target)
        parts.append(f'<line x1="{x1}" y1="{y1 + BOX_H}" x2="{x2}" y2="{y2}" '
                     'stroke="#777" stroke-width="1.2"/>')
    for name, (col, row) in positions.items():
        status = statuses.get(name, "NOT_RUN")
        x, y = GAP_X + col * (BOX_W + GAP_X), GAP_Y + row * (BOX_H + GAP_Y)
        parts.append(
            f'<g class="state" data-state="{html.escape(name)}" data-status="{status}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{STATUS_COLOURS.get(status, "#9e9e9e")}"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + 22}" text-anchor="middle" fill="white" '
            f'font-size="13">{html.escape(name)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def thumbnail_of(row: dict[str, Any]) -> str | None:
    """A path relative to the report: the small rendition, or the dead-lettered file itself."""
    keys = row.get("keys") or []
    if row["outcome"] == "ingested":
        small = next((k for k in keys if k.startswith("small/")), None)
        return f"serving/{small}" if small else None
    if row["outcome"] == "dead-letter" and keys and row.get("id"):
        return f"dead-letter/{keys[0]}"  # it reached the API, so it is a decodable image
    return None


def render_html(described: dict[str, Any], images: list[dict[str, Any]],
                definition: dict[str, Any] | None = None) -> str:
    definition = definition or load_definition()
    execution = described["execution"]
    batch = described.get("batch") or {}
    e = html.escape
    timeline_rows = "".join(
        f'<tr class="step" data-status="{e(str(r["status"]))}"><td>{e(r["state"])}</td>'
        f'<td>{e(str(r["status"]))}</td><td>{e(str(r["entered"]))}</td>'
        f'<td>{e(str(r.get("seconds", "")))}</td><td>{e(str(r.get("error") or ""))}</td></tr>'
        for r in described.get("timeline", []))
    image_rows = []
    for row in images:
        thumb = thumbnail_of(row)
        cell = (f'<img class="thumb" loading="eager" width="120" src="{e(thumb)}" '
                f'alt="{e(row["path"])}">' if thumb else "")
        image_rows.append(
            f'<tr class="image" data-outcome="{e(row["outcome"])}"><td>{cell}</td>'
            f'<td>{e(row["path"])}</td><td>{e(row["outcome"])}</td>'
            f'<td>{e(str(row.get("reason") or ""))}</td><td>{e(str(row.get("id") or ""))}</td>'
            f'<td>{e("; ".join(row.get("warnings") or []))}</td></tr>')
    counts: dict[str, int] = defaultdict(int)
    for row in images:
        counts[row["outcome"]] += 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no images"
    failed = described.get("failedState")
    failure = (f'<p class="failure">Failed at <b>{e(failed["state"])}</b>: '
               f'{e(str(failed.get("error")))}: {e(str(failed.get("cause") or ""))[:500]}</p>'
               if failed else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Batch {e(str(batch.get("_id") or execution.get("name")))}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
 table {{ border-collapse: collapse; margin: 12px 0 24px; }}
 td, th {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
 .status {{ font-weight: bold; }} .failure {{ color: #c62828; }}
 img.thumb {{ display: block; max-height: 90px; }}
</style></head>
<body data-execution-status="{e(str(execution.get("status")))}">
<h1>Batch {e(str(batch.get("_id") or execution.get("name")))}</h1>
<p>Execution <code>{e(str(execution.get("executionArn")))}</code>:
 <span class="status" id="execution-status">{e(str(execution.get("status")))}</span>.
 Images: <span id="image-summary">{e(summary)}</span>.</p>
{failure}
<h2>State machine</h2>
{graph_svg(definition, state_statuses(described.get("timeline", [])))}
<h2>Timeline</h2>
<table id="timeline"><tr><th>State</th><th>Status</th><th>Entered</th><th>Seconds</th>
<th>Error</th></tr>{timeline_rows}</table>
<h2>Images</h2>
<p id="thumbnails" data-total="{sum(1 for r in images if thumbnail_of(r))}"
 data-loaded="0" data-failed="0"></p>
<table id="images"><tr><th></th><th>Path</th><th>Outcome</th><th>Reason</th><th>Id</th>
<th>Warnings</th></tr>{"".join(image_rows)}</table>
<script>
  // Count thumbnails that really displayed, so a broken relative path is visible.
  const box = document.getElementById("thumbnails");
  const thumbs = Array.from(document.querySelectorAll("img.thumb"));
  const settle = (img, ok) => {{
    const key = ok ? "loaded" : "failed";
    box.dataset[key] = String(Number(box.dataset[key]) + 1);
    box.textContent = `${{box.dataset.loaded}} of ${{box.dataset.total}} thumbnails shown`;
  }};
  thumbs.forEach((img) => {{
    if (img.complete) settle(img, img.naturalWidth > 0);
    else {{ img.onload = () => settle(img, true); img.onerror = () => settle(img, false); }}
  }});
</script>
</body></html>
"""


def write_html_report(path: Path, described: dict[str, Any], images: list[dict[str, Any]]
                      ) -> Path:
    path.write_text(render_html(described, images), encoding="utf-8")
    return path
