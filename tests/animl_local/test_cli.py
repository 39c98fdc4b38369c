"""`animl-ingest run` as a user runs it: exit codes, one-line messages, report.json, mirrors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from animl_local.cli import main
from animl_local.samples import write_sample_folder
from tests.conftest import CAMERA_TRAPS, jpeg_bytes, zip_bytes

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow


def run_cli(*args: str) -> tuple[int, str, str]:
    """In a fresh interpreter, as a user would call it."""
    done = subprocess.run([sys.executable, "-m", "animl_local.cli", *args], capture_output=True,
                          text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


def read_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_run_on_a_sample_folder_ingests_everything_and_writes_the_report(tmp_path: Path) -> None:
    write_sample_folder(tmp_path / "cards", count=4)
    out = tmp_path / "out"

    code, stdout, stderr = run_cli("run", str(tmp_path / "cards"), "--out", str(out))

    assert code == 0, stderr
    assert "SUCCEEDED" in stdout
    report = read_report(out)
    batch = report["batch"]
    assert batch["_id"].startswith("batch-") and batch["total"] == 4
    assert batch["uploadComplete"] <= batch["processingStart"] <= batch["ingestionComplete"]
    assert report["execution"]["status"] == "SUCCEEDED"
    assert report["execution"]["stateTransitions"] >= 8
    assert report["execution"]["lambdaInvocations"] >= 6
    assert {i["outcome"] for i in report["images"]} == {"ingested"}
    for image in report["images"]:
        assert image["md"]["SerialNumber"] == "SAMPLE-CAM-0001"
        for key in image["keys"]:
            assert (out / "serving" / key).is_file()
        medium = next(k for k in image["keys"] if k.startswith("medium/"))
        assert max(Image.open(out / "serving" / medium).size) == 940
        original = next(k for k in image["keys"] if k.startswith("original/"))
        assert (out / "serving" / original).read_bytes() == \
            (tmp_path / "cards" / image["path"]).read_bytes()  # the photo as uploaded


def test_run_accounts_for_the_southwest_zero_byte_image_and_video(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(CAMERA_TRAPS / "Southwest"), "--out", str(out)]) == 0
    rows = {i["path"]: i for i in read_report(out)["images"]}
    assert len(rows) == 17
    assert rows["error_img.JPG"]["outcome"] == "dead-letter"
    assert rows["error_img.JPG"]["reason"] == "EMPTY_FILE"
    # Not an image: not in the batch's total, kept in dead-letter, one batch error says so.
    assert (rows["error_vid.mp4"]["outcome"], rows["error_vid.mp4"]["reason"]) == (
        "skipped", "VIDEO_FILE")
    for row in rows.values():
        for key in row["keys"]:
            assert (out / ("serving" if row["outcome"] == "ingested" else "dead-letter") / key
                    ).is_file()


def test_an_empty_zip_succeeds_with_total_zero(tmp_path: Path) -> None:
    archive = tmp_path / "empty.zip"
    archive.write_bytes(zip_bytes({}))
    out = tmp_path / "out"
    assert main(["run", str(archive), "--out", str(out)]) == 0
    batch = read_report(out)["batch"]
    assert batch["total"] == 0
    assert batch["processingStart"] == batch["processingEnd"] == batch["uploadComplete"]


def test_a_zero_byte_image_and_a_video_get_their_reasons(tmp_path: Path) -> None:
    archive = tmp_path / "mixed.zip"
    archive.write_bytes(zip_bytes({
        "good.jpg": jpeg_bytes(tmp_path),
        "empty.JPG": b"",
        "clip.mp4": b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64,
        "clip-named-as-image.jpg": b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64,
    }))
    out = tmp_path / "out"
    assert main(["run", str(archive), "--out", str(out), "--serial", "CAM-1"]) == 0
    reasons = {i["path"]: (i["outcome"], i["reason"]) for i in read_report(out)["images"]}
    assert reasons == {
        "good.jpg": ("ingested", None),
        "empty.JPG": ("dead-letter", "EMPTY_FILE"),
        "clip.mp4": ("skipped", "VIDEO_FILE"),
        "clip-named-as-image.jpg": ("dead-letter", "VIDEO_FILE"),  # counted by its name
    }


def test_the_web_apps_numbers_add_up_and_what_is_not_an_image_is_said_once(
        tmp_path: Path) -> None:
    good = (CAMERA_TRAPS / "BUOW" / "RCNX0242.JPG").read_bytes()
    other = (CAMERA_TRAPS / "BUOW" / "RCNX0712.JPG").read_bytes()
    folder = tmp_path / "card"
    for name, data in {"DCIM/good.JPG": good, "DCIM/copy/good.JPG": good, "DCIM/empty.jpg": b"",
                       "DCIM/truncated.JPG": other[: len(other) * 6 // 10],
                       "DCIM/clip.mp4": b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64,
                       "DCIM/notes.txt": b"field notes"}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    out = tmp_path / "out"

    assert main(["run", str(folder), "--out", str(out)]) == 0
    report = read_report(out)
    outcomes = {i["path"]: (i["outcome"], i["reason"]) for i in report["images"]}
    # The zip lists DCIM/copy/ first: that copy is the image, the other its duplicate.
    assert outcomes == {
        "DCIM/copy/good.JPG": ("ingested", None),
        "DCIM/good.JPG": ("dead-letter", "DUPLICATE_IMAGE"),
        "DCIM/empty.jpg": ("dead-letter", "EMPTY_FILE"),
        "DCIM/truncated.JPG": ("ingested", None),
        "DCIM/clip.mp4": ("skipped", "VIDEO_FILE"),
        "DCIM/notes.txt": ("skipped", "UNSUPPORTED_FILE_TYPE"),
    }
    api = report["api"]  # the stand-in's own records, as the web app counts them
    assert api["total"] == 4
    assert api["images"] + api["imageErrors"] == api["total"]
    [not_images] = api["batchErrors"]
    assert not_images.startswith("2 file(s) in the archive are not images")
    [clip] = [i for i in report["images"] if i["path"] == "DCIM/clip.mp4"]
    [key] = clip["keys"]  # under its reason, batch and place in the archive
    assert key.startswith(f"VIDEO_FILE/{report['batch']['_id']}/")
    assert key.endswith("/DCIM/clip.mp4")
    assert (out / "dead-letter" / key).read_bytes() == (folder / "DCIM/clip.mp4").read_bytes()
    [duplicate] = [i for i in report["images"] if i["path"] == "DCIM/good.JPG"]
    assert (out / "dead-letter" / duplicate["keys"][0]).read_bytes() == good


def a_missing_path(tmp: Path) -> Path:
    return tmp / "nowhere"


def a_single_image(tmp: Path) -> Path:
    (tmp / "photo.jpg").write_bytes(b"x")
    return tmp / "photo.jpg"


def a_folder_without_images(tmp: Path) -> Path:
    (tmp / "docs").mkdir()
    (tmp / "docs" / "a.txt").write_text("x")
    return tmp / "docs"


@pytest.mark.parametrize("make_path, message", [
    (a_missing_path, "no such file or folder"),
    (a_single_image, "neither a .zip archive nor a folder"),
    (a_folder_without_images, "holds no .jpg, .jpeg or .png images"),
])
def test_paths_that_cannot_be_ingested_get_one_clear_line(tmp_path: Path, make_path,
                                                          message: str) -> None:
    path = make_path(tmp_path)
    # --quiet: the progress lines aside, the error is the one line.
    code, stdout, stderr = run_cli("run", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert code == 2
    assert message in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing was started


def test_a_bad_archive_fails_with_its_reason_and_a_report(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    # Not a zip at all (a zip cut short is read from its local headers and succeeds).
    archive.write_bytes(b"this is not a zip archive\n" * 40)
    out = tmp_path / "out"

    code, stdout, stderr = run_cli("run", str(archive), "--out", str(out), "--quiet")

    assert code == 1
    assert "Traceback" not in stderr
    assert "Bad archive" in stderr and len(stderr.strip().splitlines()) == 1
    report = read_report(out)
    assert report["execution"]["status"] == "FAILED"
    assert report["batch"]["errors"][0].startswith("Bad archive")  # ingest's own record
    assert report["api"]["batchErrors"][0].startswith("Bad archive")  # and the service's


def test_zipping_a_folder_keeps_relative_paths(tmp_path: Path) -> None:
    from animl_local.local_run import archive_for

    write_sample_folder(tmp_path / "cards", count=2)
    archive = archive_for(tmp_path / "cards", tmp_path)
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == ["CAM01/IMG_0001.JPG", "CAM02/IMG_0002.JPG"]


def test_the_buow_fixtures_are_ingested_with_their_dates_and_renditions(tmp_path: Path) -> None:
    import csv

    with open(CAMERA_TRAPS / "expected-exiftool.tsv", newline="") as tsv:
        oracle = {row["path"]: row for row in csv.DictReader(tsv, delimiter="\t")}
    out = tmp_path / "out"
    assert main(["run", str(CAMERA_TRAPS / "BUOW"), "--serial", "TEST-CAM", "--out", str(out)]) == 0
    report = read_report(out)
    batch = report["batch"]
    assert batch["total"] == 20
    assert batch["uploadComplete"] <= batch["processingStart"] <= batch["ingestionComplete"]
    assert len(report["images"]) == 20
    for image in report["images"]:
        assert image["outcome"] == "ingested", image
        expected = oracle[f"BUOW/{image['path']}"]["DateTimeOriginal"]
        assert image["md"]["DateTimeOriginal"] == expected.replace(":", "-", 2).replace(" ", "T")
        sizes = {key.split("/")[0]: Image.open(out / "serving" / key).size for key in image["keys"]}
        assert max(sizes["medium"]) <= 940 and max(sizes["small"]) <= 120
        assert sizes["original"] == (int(oracle[f"BUOW/{image['path']}"]["ImageWidth"]),
                                     int(oracle[f"BUOW/{image['path']}"]["ImageHeight"]))


def test_the_report_splits_work_between_parent_and_children(tmp_path: Path) -> None:
    from functions.platform.settings import Settings

    group = Settings(stage="local").group_max_entries
    write_sample_folder(tmp_path / "cards", count=group + 3)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "cards"), "--out", str(out)]) == 0
    execution = read_report(out)["execution"]
    parent, children = execution["parent"], execution["children"]
    assert children["executions"] == 2  # one full group and one of three
    assert children["lambdaInvocations"] == children["stateTransitions"] == 2
    # Parent transitions do not grow with the images: the 18 states of the whole lifecycle
    # (with the local stage's two idle inference polls).
    assert parent["stateTransitions"] == len(parent["statesEntered"]) == 18
    # InspectArchive, four status marks, Summarize, Provision, two checks, Teardown.
    assert parent["lambdaInvocations"] == 10
    assert execution["entry"]["lambdaInvocations"] >= 1  # S3 may deliver the event twice
    assert execution["lambdaInvocations"] == 10 + 2 + execution["entry"]["lambdaInvocations"]
    assert execution["stateTransitions"] == 18 + 2
    assert read_report(out)["batch"]["processingEnd"]


def test_an_out_folder_holding_a_report_is_refused_unless_forced(tmp_path: Path,
                                                                  capsys) -> None:
    write_sample_folder(tmp_path / "first", count=2)
    write_sample_folder(tmp_path / "second", count=1)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "first"), "--out", str(out)]) == 0
    first = read_report(out)
    before = sorted(p for p in out.rglob("*"))
    capsys.readouterr()

    assert main(["run", str(tmp_path / "second"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"animl-ingest: {out} already holds a report: pass "
                                        "--force to clear it, or choose another --out"]
    assert sorted(p for p in out.rglob("*")) == before  # untouched

    assert main(["run", str(tmp_path / "second"), "--out", str(out), "--force"]) == 0
    second = read_report(out)
    assert second["batch"]["_id"] != first["batch"]["_id"]
    copied = sorted(p.relative_to(out / "serving").as_posix()
                    for p in (out / "serving").rglob("*") if p.is_file())
    assert copied == sorted(k for image in second["images"] for k in image["keys"])
    assert len(second["images"]) == 1 and len(copied) == 3  # original, medium, small


def test_tearing_down_a_stage_that_keeps_its_data_needs_yes() -> None:
    # Refused before any AWS call: no credentials or endpoint are needed to see it.
    code, out, err = run_cli("teardown", "--stage", "prod")
    assert code == 2
    assert "refusing to tear down prod without --yes" in err and "Traceback" not in err


def test_a_stage_with_no_settings_is_refused_with_how_to_add_them() -> None:
    code, out, err = run_cli("teardown", "--stage", "qa")
    assert code == 2
    assert "stage 'qa' has no entry in infrastructure/stages.json" in err


def test_missing_credentials_get_one_sentence_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") or k == "AWS_DEFAULT_REGION"}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               AWS_DEFAULT_REGION="us-west-2")
    done = subprocess.run([sys.executable, "-m", "animl_local.cli", "executions", "list",
                           "--stage", "dev"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "animl-ingest: no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (a stage served locally by `animl-ingest serve` needs none: set "
        "the AWS_ENDPOINT_URL it prints)"]
