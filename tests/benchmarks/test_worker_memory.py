"""worker_memory's worker on a small archive: its files-as-S3 adapter still covers every S3 call
a group makes (the benchmark itself builds 1.6 GB, too much for a test, and broke unnoticed once
when a group began listing its stored outcomes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import jpeg_bytes, zip_bytes

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_the_worker_runs_a_group_over_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.delitem(sys.modules, "worker_memory", raising=False)
    import worker_memory

    root = tmp_path / "root"
    (root / worker_memory.BUCKET).mkdir(parents=True)
    photos = {f"cards/IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=i) for i in range(3)}
    (root / worker_memory.BUCKET / "small.zip").write_bytes(
        zip_bytes({**photos, "cards/notes.jpg": b"not an image"}))

    worker_memory.child("small", root)

    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["entries"] == 4
    assert printed["counts"]["ingested"] == 3 and printed["counts"]["dead-letter"] == 1
    assert printed["reasons"] == ["NOT_AN_IMAGE"]
