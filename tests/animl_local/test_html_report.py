"""The HTML execution report, opened in a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from animl_local.cli import main
from animl_local.samples import write_sample_folder
from tests.conftest import CAMERA_TRAPS, zip_bytes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Runs whole batches on the embedded engine, then a browser: the full tier.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Chromium is not installed (.ci/run installs Debian's chromium)",
)]


def rendered_dom(page: Path, profile: Path) -> str:
    """The DOM after the page's script ran, as Chromium shows it."""
    done = subprocess.run(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--allow-file-access-from-files",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return done.stdout


class Elements(HTMLParser):
    """Attributes and text of elements, by tag, as the browser left them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {}
        self._open_id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.found.append((tag, attributes))
        self._open_id = attributes.get("id")

    def handle_endtag(self, tag: str) -> None:
        self._open_id = None

    def handle_data(self, data: str) -> None:
        if self._open_id:
            self.text[self._open_id] = self.text.get(self._open_id, "") + data

    def with_attr(self, tag: str, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.found if t == tag and name in a]


def parse(dom: str) -> Elements:
    elements = Elements()
    elements.feed(dom)
    return elements


def test_a_successful_run_report_shows_states_timeline_and_thumbnails(tmp_path: Path) -> None:
    write_sample_folder(tmp_path / "cards", count=3)
    shutil.copy(CAMERA_TRAPS / "Southwest/error_img.JPG", tmp_path / "cards")  # 0 bytes
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "cards"), "--out", str(out)]) == 0

    page = parse(rendered_dom(out / "report.html", tmp_path / "profile"))

    assert page.text["execution-status"] == "SUCCEEDED"
    states = {a["data-state"]: a["data-status"] for a in page.with_attr("g", "data-state")}
    assert states["InspectArchive"] == states["IngestImages"] == "SUCCEEDED"
    assert states["MarkProcessingEnd"] == "SUCCEEDED"
    assert states["BatchFailed"] == "NOT_RUN"
    rows = page.with_attr("tr", "data-outcome")
    assert sorted(r["data-outcome"] for r in rows) == ["dead-letter", "ingested", "ingested",
                                                       "ingested"]
    [thumbnails] = [a for t, a in page.found if a.get("id") == "thumbnails"]
    # The script ran in the browser and every relative thumbnail displayed.
    assert thumbnails["data-total"] == thumbnails["data-loaded"] == "3"
    assert thumbnails["data-failed"] == "0"
    assert page.text["thumbnails"] == "3 of 3 thumbnails shown"


def test_a_failed_run_report_shows_where_it_failed(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(zip_bytes({"a.jpg": b"x" * 2000})[:100])
    out = tmp_path / "out"
    assert main(["run", str(archive), "--out", str(out)]) == 1

    page = parse(rendered_dom(out / "report.html", tmp_path / "profile"))

    assert page.text["execution-status"] == "FAILED"
    states = {a["data-state"]: a["data-status"] for a in page.with_attr("g", "data-state")}
    assert states["BatchFailed"] == "FAILED"
    assert states["RecordBatchError"] == "SUCCEEDED"
    assert states["MarkUploadComplete"] == "NOT_RUN"
