"""The HTML batch report: rendered from rows (fast), and opened in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from animl_local import operations, report
from animl_local.cli import main
from animl_local.engine import ACCOUNT_ID, EmbeddedStage
from animl_local.html_report import (
    duration_text,
    embedded_thumbnails,
    render_html,
    write_html_report,
)
from animl_local.samples import sample_jpeg, write_sample_folder
from functions.platform.graphql_client import AnimlApiClient
from tests.conftest import CAMERA_TRAPS, create_batch, jpeg_bytes, zip_bytes
from tests.statemachine.test_ingest_batch_on_engine import upload

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Chromium is not installed (.ci/run installs Debian's chromium)",
)
SCRIPT_IN_PATH = "<script>document.body.dataset.pwned='yes'</script>"
LONG_NAME = "RECONYX_HYPERFIRE2_" + "X" * 140  # one word, no place to break
VIEWPORT = 1280


def chromium(*arguments: str, profile: Path) -> str:
    done = subprocess.run(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--allow-file-access-from-files",
         "--virtual-time-budget=5000", *arguments],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout


def rendered_dom(page: Path, profile: Path) -> str:
    """The DOM after the page's script ran, as Chromium shows it."""
    return chromium("--dump-dom", page.as_uri(), profile=profile)


# The report in a 1280 px wide frame; the measurements come back as JSON in the harness's DOM.
HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id="report" src="%(src)s" style="width:%(width)dpx;height:900px;border:0"></iframe>
<pre id="result"></pre>
<script>
const frame = document.getElementById("report");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument;
  const top = (id) => doc.getElementById(id).getBoundingClientRect().top;
  const shownRows = () => Array.from(doc.querySelectorAll("tr.image"))
    .filter((row) => row.getClientRects().length > 0).map((row) => row.dataset.reason);
  const result = {
    scrollWidth: doc.documentElement.scrollWidth, clientWidth: doc.documentElement.clientWidth,
    tops: {summary: top("summary"), images: top("images"), engineering: top("engineering")},
    thumbnails: Object.assign({}, doc.getElementById("thumbnails").dataset),
    scripts: doc.querySelectorAll("script").length, pwned: doc.body.dataset.pwned || null,
    paths: Array.from(doc.querySelectorAll("td.path")).map((td) => td.firstChild.textContent),
    rowsBefore: shownRows().length,
  };
  const select = doc.getElementById("filter-reason");
  select.value = %(reason)s;
  select.dispatchEvent(new Event("change"));
  result.rowsAfter = shownRows();
  result.shownText = doc.getElementById("filter-shown").textContent;
  doc.querySelector("button.show-reason").click();  // the summary's first "show"
  result.rowsAfterShow = shownRows();
  select.value = "";
  doc.getElementById("filter-outcome").value = "ingested";
  doc.getElementById("filter-outcome").dispatchEvent(new Event("change"));
  result.outcomesShown = Array.from(doc.querySelectorAll("tr.image"))
    .filter((row) => row.getClientRects().length > 0).map((row) => row.dataset.outcome);
  document.getElementById("result").textContent = JSON.stringify(result);
});
</script></body></html>"""


def measured(page: Path, tmp_path: Path, reason: str) -> dict[str, Any]:
    """Layout and filtering as the browser does them, the report at 1280 px."""
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS % {"src": page.as_uri(), "width": VIEWPORT,
                                  "reason": json.dumps(reason)})
    dom = parse(chromium("--dump-dom", harness.as_uri(), profile=tmp_path / "profile"))
    return json.loads(dom.text["result"])


class Elements(HTMLParser):
    """Attributes of elements, by tag, and the text inside each element with an id (its
    descendants' text included), as the browser left them."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                      "source", "track", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []  # (tag, id) of the elements still open

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.found.append((tag, attributes))
        if tag not in self.VOID:
            self._open.append((tag, attributes.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id:
                self.text[element_id] = self.text.get(element_id, "") + data

    def with_attr(self, tag: str, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.found if t == tag and name in a]

    def tags(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.found if t == tag]


def parse(dom: str) -> Elements:
    elements = Elements()
    elements.feed(dom)
    return elements


# --- rendered from rows: no engine, no browser ------------------------------------------------

START = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def described(status: str = "SUCCEEDED", **batch: Any) -> dict[str, Any]:
    return {
        "execution": {"executionArn": "arn:aws:states:us-west-2:1:execution:m:b1", "name": "b1",
                      "status": status, "startDate": START,
                      "stopDate": START + timedelta(seconds=95)},
        "timeline": [{"state": "InspectArchive", "status": "SUCCEEDED", "entered": START,
                      "seconds": 0.646},
                     {"state": "IngestImages", "status": "SUCCEEDED",
                      "entered": START + timedelta(seconds=1), "seconds": 83.4}],
        "failedState": None,
        "batch": {"_id": "b1", **batch},
    }


def dead_letter(path: str, reason: str, detail: str | None = None, **md: Any) -> dict[str, Any]:
    return {"path": path, "outcome": "dead-letter", "reason": reason, "id": f"p:{path}",
            "md": {"SerialNumber": "unknown", **md}, "detail": detail or reason,
            "keys": [f"{reason}/p:{path}/{path}"], "warnings": []}


def ingested(path: str) -> dict[str, Any]:
    return {"path": path, "outcome": "ingested", "reason": None, "id": f"p:{path}",
            "md": {"SerialNumber": "CAM-1", "Make": "RECONYX", "Model": "HF2",
                   "DateTimeOriginal": "2024-06-01T21:15:00"},
            "detail": None, "keys": [f"small/p:{path}-small.jpg"], "warnings": []}


def test_untrusted_paths_and_api_messages_are_shown_as_text() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    rows = [dead_letter(f"{SCRIPT_IN_PATH}/a.jpg", hostile, f"detail {hostile}",
                        Make=hostile, SerialNumber=f'"{hostile}'),
            {**ingested('b".jpg'), "warnings": [hostile]}]
    page = render_html(described(errors=[hostile]), rows)

    elements = parse(page)
    assert len(elements.tags("script")) == 1  # the report's own
    assert [a.get("class") for a in elements.tags("img")] == ["thumb", "thumb"]
    assert "onerror" not in {name for _, attrs in elements.found for name in attrs}
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;document.body.dataset.pwned" in page


class Cells(HTMLParser):
    """The text of each cell of the images table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_row = self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and ("class", "image") in attrs:
            self.rows.append([])
            self._in_row = True
        elif tag == "td" and self._in_row:
            self.rows[-1].append("")
            self._in_cell = True
        elif tag == "br" and self._in_cell:
            self.rows[-1][-1] += " | "
        elif tag == "img" and self._in_cell:
            self.rows[-1][-1] += "[thumbnail]"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "tr"):
            self._in_cell = False
        if tag == "tr":
            self._in_row = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


def test_each_image_row_shows_the_photo_when_and_by_which_camera_and_what_became_of_it(
        ) -> None:
    rows = [ingested("cam1/a.jpg"),
            dead_letter("cam2/b.jpg", "Unknown Serial Number", Make="BolyMedia",
                        Model="MG984G", DateTimeOriginal="2024-06-02T04:30:00"),
            dead_letter("c.jpg", "EMPTY_FILE", "the file is empty (0 bytes)")]
    thumbnails = {"cam1/a.jpg": "data:image/jpeg;base64,AA==",
                  "cam2/b.jpg": "data:image/jpeg;base64,AA=="}
    cells = Cells()
    cells.feed(render_html(described(), rows, thumbnails=thumbnails))

    # Thumbnail, path (and the image's id), capture time, make and model | serial, outcome,
    # reason with its detail.
    assert cells.rows == [
        ["[thumbnail]", "cam1/a.jpgp:cam1/a.jpg", "2024-06-01 21:15:00",
         "RECONYX HF2 | serial CAM-1", "ingested", ""],
        ["[thumbnail]", "cam2/b.jpgp:cam2/b.jpg", "2024-06-02 04:30:00",
         "BolyMedia MG984G | no serial", "dead-letter", "Unknown Serial Number"],
        ["no preview", "c.jpgp:c.jpg", "", " | no serial", "dead-letter",
         "EMPTY_FILEthe file is empty (0 bytes)"]]


def test_a_multiple_errors_row_names_each_error() -> None:
    rows = [dead_letter("a.jpg", "MULTIPLE_ERRORS",
                        "Unknown Serial Number; Unknown DateTimeOriginal")]
    page = render_html(described(), rows)

    row = page[page.index('<tr class="image"'):]
    assert ('<b>MULTIPLE_ERRORS</b><ul class="errors"><li>Unknown Serial Number</li>'
            '<li>Unknown DateTimeOriginal</li></ul>') in row[:row.index("</tr>")]
    # The summary counts which errors came together.
    assert "1 × Unknown Serial Number + Unknown DateTimeOriginal" in page


def test_the_summary_counts_reasons_and_says_what_to_do_about_each() -> None:
    rows = [*(dead_letter(f"{i}.jpg", "Unknown Serial Number", Make="SY", Model="4.0CG-R")
              for i in range(2)),
            dead_letter("2.jpg", "Unknown Serial Number", Make="BolyMedia"),
            dead_letter("e.jpg", "EMPTY_FILE", "the file is empty (0 bytes)"),
            dead_letter("t.jpg", "API timeout"), ingested("ok.jpg")]
    page = render_html(described(), rows)
    elements = parse(page)

    reason_rows = {a["data-reason"]: a for a in elements.with_attr("tr", "data-reason")
                   if a.get("class") == "reason"}
    assert list(reason_rows) == ["Unknown Serial Number", "API timeout", "EMPTY_FILE"]
    summary = page[page.index('id="summary"'):page.index('id="images-section"')]
    assert '<td class="num">3</td><td><b>Unknown Serial Number</b>' in summary
    assert "--serial SERIAL" in summary
    # Which cameras wrote no serial: one upload per camera fixes them.
    assert "<li>2 × SY 4.0CG-R</li><li>1 × BolyMedia</li>" in summary
    assert "Copy it from the card again" in summary  # EMPTY_FILE's advice
    # An API refusal has no advice of its own: the command that sends those images again.
    assert "animl-ingest reprocess b1 --reason &quot;API timeout&quot;" in summary


def test_most_images_without_a_serial_number_is_said_first_and_plainly() -> None:
    rows = [*(dead_letter(f"{i}.jpg", "Unknown Serial Number") for i in range(19)),
            dead_letter("m.jpg", "MULTIPLE_ERRORS",
                        "Unknown Serial Number; Unknown DateTimeOriginal"),
            ingested("a.jpg"), ingested("b.jpg")]
    page = render_html(described(), rows)
    elements = parse(page)

    assert "Most images were NOT ingested: only 2 of 22" in elements.text["verdict"]
    assert elements.text["serial-hint"].startswith("20 of 22 images have no camera serial")
    assert page.index('id="serial-hint"') < page.index('id="images-section"')
    assert page.index('id="images-section"') < page.index('id="engineering"')


def test_a_failure_a_redrive_recovered_from_is_shown_resolved() -> None:
    failure = "Ingest failed: 5 image(s) in 2 group(s) have no outcome (groups [1, 2])"
    batch = described(errors=[failure], resolvedErrors=[
        {"error": failure, "resolvedAt": "2024-06-01T13:00:00Z"}])
    elements = parse(render_html(batch, [ingested("a.jpg")]))

    assert elements.text["resolved-errors"] == f"{failure} (resolved 2024-06-01T13:00:00Z)"
    assert elements.text["batch-errors"] == failure  # the API's list is as it is
    assert "resolved-errors" not in parse(render_html(described(errors=[failure]),
                                                      [ingested("a.jpg")])).text


def test_a_batch_still_running_is_not_judged_yet() -> None:
    rows = [dead_letter("x.jpg", "Unknown Serial Number"), ingested("a.jpg")]
    elements = parse(render_html(described("RUNNING"), rows))

    assert elements.text["verdict"].startswith("The batch is still running: 1 of the 2 images")


def test_a_few_images_without_a_serial_number_raise_no_alarm() -> None:
    rows = [dead_letter("x.jpg", "Unknown Serial Number"), ingested("a.jpg"), ingested("b.jpg")]
    elements = parse(render_html(described(), rows))

    assert "serial-hint" not in elements.text
    assert elements.text["verdict"].startswith("2 of 3 images are in Animl")


def test_durations_read_in_the_unit_that_fits() -> None:
    assert [duration_text(s) for s in (0.000123, 0.646, 3.459, 83.4, 3725)] == [
        "0 ms", "646 ms", "3.5 s", "1 min 23 s", "62 min 5 s"]
    page = render_html(described(), [])
    assert "12:00:01 (+1.0 s)" in page and "1 min 23 s" in page and "took 1 min 35 s" in page


# --- in a real browser ------------------------------------------------------------------------

def card_folder(root: Path) -> Path:
    """What a card dump may hold: photos from a camera that writes its serial, more from one
    that does not, an empty file, a folder name with markup, a very long name."""
    cards = root / "cards"
    write_sample_folder(cards / "good", count=2)
    taken = datetime(2024, 6, 2, 4, 30)
    (cards / "noserial").mkdir()
    for index in range(6):
        sample_jpeg(cards / "noserial" / f"IMG_{index:04d}.JPG", taken + timedelta(minutes=index),
                    seed=10 + index, size=(640, 480), serial=None)
    shutil.copy(CAMERA_TRAPS / "Southwest/error_img.JPG", cards)  # 0 bytes
    hostile = cards / SCRIPT_IN_PATH
    hostile.mkdir(parents=True)
    sample_jpeg(hostile / "x.jpg", taken, seed=30, size=(640, 480))
    sample_jpeg(cards / f"{LONG_NAME}.JPG", taken, seed=31, size=(640, 480))
    return cards


@pytest.mark.slow  # whole batches on the embedded engine, then a browser: the full tier
@needs_chromium
def test_a_run_report_reads_summary_first_fits_1280_px_and_filters(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(card_folder(tmp_path)), "--out", str(out)]) == 0

    page = parse(rendered_dom(out / "report.html", tmp_path / "profile"))
    layout = measured(out / "report.html", tmp_path, "Unknown Serial Number")

    assert page.text["execution-status"] == "SUCCEEDED"
    assert page.text["serial-hint"].startswith("6 of 11 images have no camera serial number")
    outcomes = sorted(a["data-outcome"] for a in page.with_attr("tr", "data-outcome")
                      if a.get("class") == "image")
    assert outcomes == ["dead-letter"] * 7 + ["ingested"] * 4
    # Summary, then images, then the engineering detail.
    tops = layout["tops"]
    assert tops["summary"] < tops["images"] < tops["engineering"]
    assert layout["scrollWidth"] <= layout["clientWidth"] <= VIEWPORT  # no horizontal overflow
    # Every thumbnail displayed: the small renditions, and the dead-lettered photos.
    assert layout["thumbnails"]["total"] == layout["thumbnails"]["loaded"] == "10"
    # Each thumbnail links to a larger view beside the report (medium rendition or the file).
    links = [unquote(a["href"]) for a in page.with_attr("a", "href")]
    assert len(links) == 10 and all((out / link).is_file() for link in links)
    # The markup in a folder name stayed text.
    assert layout["scripts"] == 1 and layout["pwned"] is None
    assert f"{SCRIPT_IN_PATH}/x.jpg" in layout["paths"]
    # The filter shows only the images refused for that reason; the summary's button too.
    assert layout["rowsBefore"] == 11
    assert layout["rowsAfter"] == ["Unknown Serial Number"] * 6
    assert layout["shownText"] == "6 of 11 shown"
    assert layout["rowsAfterShow"] == ["Unknown Serial Number"] * 6
    assert layout["outcomesShown"] == ["ingested"] * 4


@pytest.mark.slow
@needs_chromium
def test_a_failed_run_report_shows_where_it_failed(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"this is not a zip archive\n" * 40)  # no directory, no local headers
    out = tmp_path / "out"
    assert main(["run", str(archive), "--out", str(out)]) == 1

    page = parse(rendered_dom(out / "report.html", tmp_path / "profile"))

    assert page.text["execution-status"] == "FAILED"
    assert page.text["verdict"].startswith("The batch did not finish (failed): no image was")
    states = {a["data-state"]: a["data-status"] for a in page.with_attr("g", "data-state")}
    assert states["BatchFailed"] == "FAILED"
    assert states["RecordBatchError"] == "SUCCEEDED"
    assert states["MarkUploadComplete"] == "NOT_RUN"
    assert {a["data-status"] for a in page.with_attr("li", "data-status")} == {
        "SUCCEEDED", "FAILED", "NOT_RUN"}  # the legend names the colours used


@pytest.mark.slow
@needs_chromium
def test_a_described_batch_shows_its_thumbnails_from_the_buckets(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path) -> None:
    batch_id = create_batch(api_client)  # no override serial
    members = {"a.jpg": jpeg_bytes(tmp_path, 1), "b.jpg": jpeg_bytes(tmp_path, 2),
               "c.jpg": jpeg_bytes(tmp_path, 3, serial=None), "d.jpg": b""}
    upload(stage, tmp_path, batch_id, zip_bytes(members))
    s3 = stage.client("s3")

    # What `executions describe --html` reads: the stage, no mirror beside the page.
    described = operations.describe_batch(stage.client("stepfunctions"), s3, stage.settings,
                                          ACCOUNT_ID, batch_id)
    images, _complete = report.batch_images(s3, stage.settings, batch_id)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    page_path = write_html_report(elsewhere / "describe.html", described, images,
                                  embedded_thumbnails(s3, stage.settings, images))
    page = parse(rendered_dom(page_path, tmp_path / "profile"))

    [thumbnails] = [a for t, a in page.found if a.get("id") == "thumbnails"]
    # The ingested photos' small renditions and the dead-lettered photo (no serial) shrunk.
    assert thumbnails["data-total"] == thumbnails["data-loaded"] == "3"
    assert page.text["thumbnails"] == "3 of 3 thumbnails shown"
    assert all(a["src"].startswith("data:image/jpeg;base64,")
               for a in page.with_attr("img", "src"))
