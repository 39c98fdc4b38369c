"""A batch report for the people who look at the photos, with the engineering detail below.

Top to bottom: what happened to the images (counts per outcome and per reason, and what to do
about each reason), then every file (thumbnail, path, capture time, camera, outcome, reason with
its detail), filterable by outcome and reason, then the state machine coloured as the console
colours it (with a legend) and the per-state timeline.

The page is one static file that works offline (no CDN, no fetch): HTML, CSS, SVG and a little
script that filters the table and counts the thumbnails that loaded (so a broken thumbnail path
shows, and a browser test can see it). Paths, reasons and API messages are untrusted input:
every value is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import mimetypes
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from animl_local.reason_advice import ADVICE, UNKNOWN_SERIAL, advice_for
from animl_local.state_machine import load_definition
from functions.image.ingest_image import DEAD_LETTER, INGESTED, SKIPPED
from functions.image.renditions import SMALL_SIZE
from functions.platform import reasons
from functions.platform.settings import Settings

STATUS_COLOURS = {  # the console's palette, roughly
    "SUCCEEDED": "#2e7d32", "FAILED": "#c62828", "RUNNING": "#1565c0", "CAUGHT": "#ef6c00",
    "ABORTED": "#6d4c41", "TIMED_OUT": "#ad1457", "NOT_RUN": "#9e9e9e",
}
STATUS_MEANINGS = {
    "SUCCEEDED": "ran and finished", "FAILED": "failed: the batch stopped here",
    "RUNNING": "still running", "CAUGHT": "failed, and the failure was handled",
    "ABORTED": "stopped by an operator", "TIMED_OUT": "ran out of time",
    "NOT_RUN": "not reached (another branch was taken)",
}
OUTCOME_LABELS = {
    INGESTED: "in Animl",
    DEAD_LETTER: "not ingested (kept in the dead-letter bucket)",
    SKIPPED: "not a photo (kept, not counted in the batch)",
}
BOX_W, BOX_H, GAP_X, GAP_Y = 190, 34, 24, 26
DETAIL_CHARS = 300  # an API message can be long; the full text is in the cell's title


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
            f'<g class="state" data-state="{html.escape(name)}" '
            f'data-status="{html.escape(status)}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{STATUS_COLOURS.get(status, "#9e9e9e")}"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + 22}" text-anchor="middle" fill="white" '
            f'font-size="13">{html.escape(name)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def legend(statuses: Iterable[str]) -> str:
    """The colours the diagram uses, and what each means."""
    shown = [s for s in STATUS_COLOURS if s in set(statuses) | {"NOT_RUN"}]
    items = "".join(
        f'<li data-status="{s}"><span class="swatch" style="background:{STATUS_COLOURS[s]}">'
        f'</span>{html.escape(s)}: {html.escape(STATUS_MEANINGS[s])}</li>' for s in shown)
    return f'<ul class="legend" id="legend">{items}</ul>'


# --- thumbnails -----------------------------------------------------------------------------

def relative_thumbnails(images: list[dict[str, Any]]) -> dict[str, str]:
    """Per path, a URL relative to the report: the small rendition, or the dead-lettered file
    itself (`run` mirrors both beside report.html)."""
    sources = {}
    for row in images:
        key = thumbnail_key(row)
        if key:
            folder = "serving" if row["outcome"] == INGESTED else "dead-letter"
            sources[row["path"]] = quote(f"{folder}/{key}")  # keys hold spaces, '#', ':'
    return sources


def relative_full_views(images: list[dict[str, Any]]) -> dict[str, str]:
    """Per path, a link to the photo at a size worth looking at: the medium rendition, or the
    dead-lettered file itself."""
    links = {}
    for row in images:
        keys = row.get("keys") or []
        if row["outcome"] == INGESTED:
            medium = next((k for k in keys if k.startswith("medium/")), None)
            if medium:
                links[row["path"]] = quote(f"serving/{medium}")
        elif row["outcome"] == DEAD_LETTER and keys and row.get("id"):
            links[row["path"]] = quote(f"dead-letter/{keys[0]}")
    return links


def thumbnail_key(row: dict[str, Any]) -> str | None:
    """The object that shows an image: its small rendition in the serving bucket, or, for a
    dead-lettered file that reached the API (so it decodes), the file in the dead-letter bucket.
    Files refused before the API (empty, corrupt, not images) have none."""
    keys = row.get("keys") or []
    if row["outcome"] == INGESTED:
        return next((k for k in keys if k.startswith("small/")), None)
    if row["outcome"] == DEAD_LETTER and keys and row.get("id"):
        return str(keys[0])
    return None


def embedded_thumbnails(s3: Any, settings: Settings, images: list[dict[str, Any]]
                        ) -> dict[str, str]:
    """Per path, the thumbnail as a data URI, read from the stage's buckets.

    For `executions describe --html`: no mirror lies beside that page, the serving bucket is
    private (its distribution serves signed URLs only), and a signed URL would expire. Embedded,
    the page stands alone: mailed or opened offline it still shows the photos. Small renditions
    are a few KB each; a dead-lettered file is shrunk to the same size first.
    """
    sources = {}
    for row in images:
        key = thumbnail_key(row)
        if not key:
            continue
        bucket = settings.serving_bucket if row["outcome"] == INGESTED else \
            settings.dead_letter_bucket
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:  # removed since (e.g. reprocessed): show none
            continue
        if row["outcome"] == INGESTED:
            mime = mimetypes.guess_type(key)[0] or "image/jpeg"
        else:
            body, mime = shrunk_jpeg(body), "image/jpeg"
        if body:
            sources[row["path"]] = f"data:{mime};base64,{base64.b64encode(body).decode()}"
    return sources


def shrunk_jpeg(data: bytes) -> bytes | None:
    """A small JPEG of a dead-lettered photo. Not `renditions.render`: that makes the medium
    rendition too, at full decode; JPEG draft mode decodes at 1/8 scale."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (SMALL_SIZE[0] * 2, SMALL_SIZE[1] * 2))
            small = ImageOps.exif_transpose(image.convert("RGB"))
            small.thumbnail(SMALL_SIZE)
            out = io.BytesIO()
            small.save(out, format="JPEG", quality=80)
            return out.getvalue()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


# --- the summary ----------------------------------------------------------------------------

def in_outcome_order(counts: Counter[str]) -> list[tuple[str, int]]:
    """Ingested first, then set aside, then not photos (any other outcome last)."""
    order = list(OUTCOME_LABELS)
    return sorted(counts.items(),
                  key=lambda item: (order.index(item[0]) if item[0] in order else len(order),
                                    item[0]))


def errors_of(row: dict[str, Any]) -> list[str]:
    """The problems behind a row's reason: a MULTIPLE_ERRORS row's detail lists them."""
    reason = row.get("reason")
    if not reason:
        return []
    if reason == reasons.MULTIPLE_ERRORS and row.get("detail"):
        return [e.strip() for e in str(row["detail"]).split(";") if e.strip()]
    return [str(reason)]


@dataclass(frozen=True)
class ReasonGroup:
    reason: str
    outcome: str
    count: int
    # What the group is made of, how often: for MULTIPLE_ERRORS the errors that came together;
    # for a missing serial the cameras (one upload per camera fixes them).
    breakdown: Counter[str]


def breakdown_of(reason: str, members: list[dict[str, Any]]) -> Counter[str]:
    if reason == reasons.MULTIPLE_ERRORS:
        return Counter(" + ".join(errors_of(r)) for r in members)
    if reason == UNKNOWN_SERIAL:
        return Counter(camera_name(r.get("md") or {}) or "camera not named" for r in members)
    return Counter()


def reason_groups(images: list[dict[str, Any]]) -> list[ReasonGroup]:
    """One group per (reason, outcome), largest first."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in images:
        if row.get("reason"):
            rows[(str(row["reason"]), row["outcome"])].append(row)
    groups = [ReasonGroup(reason, outcome, len(members), breakdown_of(reason, members))
              for (reason, outcome), members in rows.items()]
    return sorted(groups, key=lambda g: (-g.count, g.reason))


@dataclass(frozen=True)
class Verdict:
    tone: str  # "good", "warn" or "bad": the colour of the box
    text: str


def verdict(execution_status: str, images: list[dict[str, Any]]) -> Verdict:
    """One sentence on how the batch went for the photos (not for the workflow)."""
    counted = [r for r in images if r["outcome"] != SKIPPED]
    ingested = sum(1 for r in counted if r["outcome"] == INGESTED)
    if execution_status == "RUNNING":
        return Verdict("warn", f"The batch is still running: {ingested} of the {len(counted)} "
                               "images handled so far are in Animl.")
    if execution_status != "SUCCEEDED":
        handled = (f"{ingested} of the {len(counted)} images handled before that are in Animl"
                   if counted else "no image was handled")
        return Verdict("bad", f"The batch did not finish ({execution_status.lower()}): "
                              f"{handled}. Where and why it stopped is below.")
    if not counted:
        return Verdict("warn", "No photos in this batch were ingested: it held none.")
    if ingested == len(counted):
        return Verdict("good", f"All {ingested} images are in Animl.")
    missing = len(counted) - ingested
    if missing * 2 > len(counted):
        return Verdict("bad", f"Most images were NOT ingested: only {ingested} of "
                              f"{len(counted)} are in Animl; {missing} were set aside. The "
                              "reasons and what to do are below.")
    return Verdict("warn", f"{ingested} of {len(counted)} images are in Animl; {missing} were "
                           "set aside. The reasons and what to do are below.")


def serial_hint(images: list[dict[str, Any]]) -> str:
    """The warning when most images lack a serial number: the commonest way a whole card is
    lost, while every state of the workflow shows green."""
    counted = [r for r in images if r["outcome"] != SKIPPED]
    lacking = [r for r in counted if UNKNOWN_SERIAL in errors_of(r)]
    if not lacking or len(lacking) * 2 <= len(counted):
        return ""
    return (f'<p class="hint bad" id="serial-hint"><b>{len(lacking)} of {len(counted)} images '
            f'have no camera serial number</b> and were not ingested. Upload them again with '
            f'the camera\'s serial: <code>animl-ingest run FOLDER --serial SERIAL</code>, or '
            f'the web app\'s override serial; one upload per camera (the table below names the '
            f'cameras). The workflow diagram further down can be all green all the same: it '
            f'shows that ingest ran, not that the photos arrived.</p>')


def summary_section(described: dict[str, Any], images: list[dict[str, Any]]) -> str:
    e = html.escape
    execution = described["execution"]
    batch = described.get("batch") or {}
    batch_id = str(batch.get("_id") or execution.get("name"))
    told = verdict(str(execution.get("status")), images)
    outcomes = Counter(r["outcome"] for r in images)
    outcome_items = "".join(
        f'<li data-outcome="{e(o)}"><b class="count">{n}</b> '
        f'{e(OUTCOME_LABELS.get(o, o))}</li>' for o, n in in_outcome_order(outcomes))
    failed = described.get("failedState")
    failure = (f'<p class="failure">Failed at <b>{e(str(failed["state"]))}</b>: '
               f'{e(str(failed.get("error")))}: {e(str(failed.get("cause") or "")[:500])}</p>'
               if failed else "")
    batch_errors = "".join(f"<li>{e(str(m))}</li>" for m in batch.get("errors") or [])
    batch_errors = (f'<p>The batch\'s own messages:</p><ul id="batch-errors">{batch_errors}</ul>'
                    if batch_errors else "")
    batch_errors += resolved_errors(batch.get("resolvedErrors") or [])
    warnings = Counter(w for r in images for w in r.get("warnings") or [])
    warning_items = "".join(f"<li>{n} × {e(w)}</li>" for w, n in warnings.most_common())
    warning_list = (f'<p>Warnings (the file was handled all the same):</p>'
                    f'<ul id="warnings">{warning_items}</ul>'
                    if warning_items else "")
    return f"""<section id="summary">
<p class="verdict {told.tone}" id="verdict">{e(told.text)}</p>
{serial_hint(images)}{failure}
<ul class="outcomes" id="outcome-counts">{outcome_items or "<li>No files were handled.</li>"}</ul>
{reason_table(batch_id, reason_groups(images))}
{batch_errors}{warning_list}
</section>"""


def resolved_errors(resolved: list[dict[str, Any]]) -> str:
    """Earlier executions' failures that a later one (a re-drive) recovered from: the API still
    lists them among the batch's messages, so the report says they no longer hold."""
    if not resolved:
        return ""
    e = html.escape
    items = "".join(f'<li>{e(str(r.get("error")))} <i>(resolved {e(str(r.get("resolvedAt")))})'
                    f'</i></li>' for r in resolved)
    return (f'<p class="good">Resolved: an earlier execution failed, a later one completed the '
            f'batch:</p><ul id="resolved-errors">{items}</ul>')


def reason_table(batch_id: str, groups: list[ReasonGroup]) -> str:
    if not groups:
        return ""
    e = html.escape
    rows = []
    for group in groups:
        combos = "".join(f"<li>{n} × {e(c)}</li>" for c, n in group.breakdown.most_common())
        combos = f'<ul class="combos">{combos}</ul>' if combos else ""
        advice = e(advice_for(group.reason))
        if group.reason not in ADVICE:  # an API refusal: the command that sends them again
            command = f'animl-ingest reprocess {batch_id} --reason "{group.reason}"'
            advice += f"<br><code>{e(command)}</code>"
        rows.append(
            f'<tr class="reason" data-reason="{e(group.reason)}" data-outcome="{e(group.outcome)}">'
            f'<td class="num">{group.count}</td><td><b>{e(group.reason)}</b>{combos}</td>'
            f'<td>{e(OUTCOME_LABELS.get(group.outcome, group.outcome))}</td><td>{advice}</td>'
            f'<td><button type="button" class="show-reason" data-reason="{e(group.reason)}">'
            f'show</button></td></tr>')
    return ('<table id="reasons"><colgroup><col style="width:4em"><col style="width:22%">'
            '<col style="width:16%"><col><col style="width:5em"></colgroup>'
            '<thead><tr><th>Files</th><th>Reason</th><th>Outcome</th><th>What to do</th>'
            f'<th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


# --- the images -----------------------------------------------------------------------------

def capture_time(md: Mapping[str, Any]) -> str:
    taken = md.get("DateTimeOriginal")
    return str(taken).replace("T", " ") if taken else ""


def camera_name(md: Mapping[str, Any]) -> str:
    """Make and model, as far as the photo names them."""
    return " ".join(str(md[f]) for f in ("Make", "Model") if md.get(f) and md[f] != "unknown")


def camera_cell(md: Mapping[str, Any]) -> str:
    """Make and model, and the serial (flagged when missing: Animl needs it)."""
    if not md:
        return ""
    camera = camera_name(md)
    serial = md.get("SerialNumber")
    if serial in (None, "", "unknown"):
        return f'{html.escape(camera)}<br><span class="serial missing">no serial</span>'
    return f'{html.escape(camera)}<br><span class="serial">serial {html.escape(str(serial))}</span>'


def reason_cell(row: dict[str, Any]) -> str:
    """The reason with its detail: a MULTIPLE_ERRORS row lists its errors; warnings follow."""
    e = html.escape
    reason = str(row.get("reason") or "")
    detail = str(row.get("detail") or "")
    if reason == reasons.MULTIPLE_ERRORS:
        listed = "".join(f"<li>{e(p)}</li>" for p in errors_of(row))
        text = f'<b>{e(reason)}</b><ul class="errors">{listed}</ul>'
    elif reason and detail not in ("", reason):
        more = "…" if len(detail) > DETAIL_CHARS else ""
        text = (f'<b>{e(reason)}</b><div class="detail" title="{e(detail)}">'
                f'{e(detail[:DETAIL_CHARS])}{more}</div>')
    else:
        text = f"<b>{e(reason)}</b>" if reason else ""
    return text + "".join(f'<div class="warning">⚠ {e(w)}</div>'
                          for w in row.get("warnings") or [])


def image_row(row: dict[str, Any], thumbnail: str | None, full_view: str | None) -> str:
    e = html.escape
    md = row.get("md") or {}
    cell = (f'<img class="thumb" loading="eager" src="{e(thumbnail)}" alt="{e(row["path"])}">'
            if thumbnail else '<span class="nothumb">no preview</span>')
    if thumbnail and full_view:
        cell = f'<a href="{e(full_view)}" target="_blank" rel="noopener">{cell}</a>'
    image_id = f'<div class="id">{e(str(row["id"]))}</div>' if row.get("id") else ""
    return (f'<tr class="image" data-outcome="{e(row["outcome"])}" '
            f'data-reason="{e(str(row.get("reason") or ""))}">'
            f'<td class="thumbcell">{cell}</td><td class="path">{e(row["path"])}{image_id}</td>'
            f'<td>{e(capture_time(md))}</td><td>{camera_cell(md)}</td>'
            f'<td class="outcome {e(row["outcome"])}">{e(row["outcome"])}</td>'
            f'<td>{reason_cell(row)}</td></tr>')


def filters(images: list[dict[str, Any]]) -> str:
    """Two selects; the script hides the rows that do not match (with no script, all show)."""
    e = html.escape
    outcomes = Counter(r["outcome"] for r in images)
    found = Counter(str(r["reason"]) for r in images if r.get("reason"))
    outcome_options = "".join(f'<option value="{e(o)}">{e(o)} ({n})</option>'
                              for o, n in in_outcome_order(outcomes))
    reason_options = "".join(f'<option value="{e(r)}">{e(r)} ({n})</option>'
                             for r, n in found.most_common())
    return (f'<div class="filters"><label>Outcome <select id="filter-outcome">'
            f'<option value="">all</option>{outcome_options}</select></label> '
            f'<label>Reason <select id="filter-reason"><option value="">all</option>'
            f'{reason_options}</select></label> <span id="filter-shown">{len(images)} of '
            f'{len(images)} shown</span></div>')


def images_section(images: list[dict[str, Any]], thumbnails: Mapping[str, str],
                   full_views: Mapping[str, str]) -> str:
    rows = "".join(image_row(row, thumbnails.get(row["path"]), full_views.get(row["path"]))
                   for row in images)
    total = sum(1 for r in images if thumbnails.get(r["path"]))
    return f"""<section id="images-section"><h2>Images</h2>
{filters(images)}
<p id="thumbnails" data-total="{total}" data-loaded="0" data-failed="0"></p>
<table id="images"><colgroup><col style="width:136px"><col style="width:24%">
<col style="width:11%"><col style="width:15%"><col style="width:8%"><col></colgroup>
<thead><tr><th></th><th>File</th><th>Taken</th><th>Camera</th><th>Outcome</th><th>Reason</th>
</tr></thead><tbody>{rows}</tbody></table></section>"""


# --- the engineering detail -----------------------------------------------------------------

def duration_text(seconds: float | None) -> str:
    """Milliseconds below a second, seconds below a minute, then minutes and seconds."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def clock_text(moment: Any, start: Any) -> str:
    """Time of day (UTC), and the offset from the execution's start."""
    if not isinstance(moment, datetime):
        return str(moment or "")
    text = moment.strftime("%H:%M:%S")
    if isinstance(start, datetime):
        text += f" (+{duration_text((moment - start).total_seconds()) or '0 ms'})"
    return text


def engineering_section(described: dict[str, Any], definition: dict[str, Any]) -> str:
    e = html.escape
    execution = described["execution"]
    timeline = described.get("timeline", [])
    start = execution.get("startDate")
    rows = "".join(
        f'<tr class="step" data-status="{e(str(r["status"]))}"><td>{e(str(r["state"]))}</td>'
        f'<td>{e(clock_text(r.get("entered"), start))}</td>'
        f'<td class="num">{e(duration_text(r.get("seconds")))}</td><td>{e(str(r["status"]))}</td>'
        f'<td>{e(str(r.get("error") or ""))}</td></tr>' for r in timeline)
    statuses = state_statuses(timeline)
    took = ""
    if isinstance(start, datetime) and isinstance(execution.get("stopDate"), datetime):
        took = f", took {duration_text((execution['stopDate'] - start).total_seconds())}"
    started = start.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(start, datetime) else ""
    return f"""<section id="engineering"><h2>How ingest ran</h2>
<p>Execution <code class="arn">{e(str(execution.get("executionArn")))}</code>:
 <span class="status" id="execution-status">{e(str(execution.get("status")))}</span>
 {e(f"(started {started}{took})" if started else "")}.</p>
<h3>State machine</h3>
<p class="note">The colours show how the workflow ran, not how the photos fared: every state
can be green while every image was set aside (see the summary at the top).</p>
{legend(statuses.values())}
<div class="diagram">{graph_svg(definition, statuses)}</div>
<h3>Timeline</h3>
<table id="timeline"><thead><tr><th>State</th><th>Entered (UTC)</th><th>Took</th><th>Status</th>
<th>Error</th></tr></thead><tbody>{rows}</tbody></table></section>"""


STYLE = """
 body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
 h1 { font-size: 1.5em; overflow-wrap: anywhere; }
 table { border-collapse: collapse; margin: 12px 0 24px; width: 100%; table-layout: fixed; }
 td, th { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left;
          vertical-align: top; overflow-wrap: anywhere; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 code { overflow-wrap: anywhere; }
 .verdict, .hint { padding: 10px 14px; border-radius: 6px; font-size: 1.1em; }
 .good { background: #e8f5e9; border-left: 6px solid #2e7d32; }
 .warn { background: #fff8e1; border-left: 6px solid #ef6c00; }
 .bad { background: #ffebee; border-left: 6px solid #c62828; }
 .failure { color: #c62828; }
 ul.outcomes { list-style: none; padding: 0; display: flex; gap: 24px; flex-wrap: wrap; }
 ul.outcomes .count { font-size: 1.4em; }
 ul.combos, ul.errors { margin: 2px 0; padding-left: 18px; }
 img.thumb { display: block; max-width: 120px; max-height: 90px; }
 .nothumb, .id, .detail { color: #666; font-size: 0.85em; }
 .serial.missing { color: #c62828; font-weight: bold; }
 .warning { color: #8d5300; font-size: 0.9em; }
 td.outcome.ingested { color: #2e7d32; } td.outcome.dead-letter { color: #c62828; }
 td.outcome.skipped { color: #666; }
 .filters { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
 tr.image[hidden] { display: none; }
 .note { color: #555; }
 ul.legend { list-style: none; padding: 0; display: flex; gap: 18px; flex-wrap: wrap; }
 .swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px;
           margin-right: 6px; vertical-align: middle; }
 .diagram { overflow-x: auto; } .diagram svg { max-width: 100%; height: auto; }
 #timeline { max-width: 1000px; }
"""

SCRIPT = """
  // Count thumbnails that really displayed, so a broken thumbnail source is visible.
  const box = document.getElementById("thumbnails");
  const settle = (ok) => {
    const key = ok ? "loaded" : "failed";
    box.dataset[key] = String(Number(box.dataset[key]) + 1);
    box.textContent = `${box.dataset.loaded} of ${box.dataset.total} thumbnails shown`;
  };
  document.querySelectorAll("img.thumb").forEach((img) => {
    if (img.complete) settle(img.naturalWidth > 0);
    else { img.onload = () => settle(true); img.onerror = () => settle(false); }
  });
  // Filter the images by outcome and reason (values compared as text, never parsed as HTML).
  const byOutcome = document.getElementById("filter-outcome");
  const byReason = document.getElementById("filter-reason");
  const shown = document.getElementById("filter-shown");
  const rows = Array.from(document.querySelectorAll("tr.image"));
  const applyFilter = () => {
    let count = 0;
    rows.forEach((row) => {
      const match = (!byOutcome.value || row.dataset.outcome === byOutcome.value)
        && (!byReason.value || row.dataset.reason === byReason.value);
      row.hidden = !match;
      if (match) count += 1;
    });
    shown.textContent = `${count} of ${rows.length} shown`;
  };
  byOutcome.addEventListener("change", applyFilter);
  byReason.addEventListener("change", applyFilter);
  document.querySelectorAll("button.show-reason").forEach((button) => {
    button.addEventListener("click", () => {
      byOutcome.value = "";
      byReason.value = button.dataset.reason;
      applyFilter();
      document.getElementById("images-section").scrollIntoView();
    });
  });
"""


def render_html(described: dict[str, Any], images: list[dict[str, Any]],
                definition: dict[str, Any] | None = None,
                thumbnails: Mapping[str, str] | None = None) -> str:
    """The page. `thumbnails`: an image source per path (default: the files `run` mirrors
    beside the report, each linked to a larger view; `embedded_thumbnails` for a page that
    stands alone, with no links)."""
    definition = definition or load_definition()
    full_views = relative_full_views(images) if thumbnails is None else {}
    thumbnails = relative_thumbnails(images) if thumbnails is None else thumbnails
    execution = described["execution"]
    batch = described.get("batch") or {}
    title = html.escape(f"Batch {batch.get('_id') or execution.get('name')}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style></head>
<body data-execution-status="{html.escape(str(execution.get("status")))}">
<h1>{title}</h1>
{summary_section(described, images)}
{images_section(images, thumbnails, full_views)}
{engineering_section(described, definition)}
<script>{SCRIPT}</script>
</body></html>
"""


def write_html_report(path: Path, described: dict[str, Any], images: list[dict[str, Any]],
                      thumbnails: Mapping[str, str] | None = None) -> Path:
    path.write_text(render_html(described, images, thumbnails=thumbnails), encoding="utf-8")
    return path
