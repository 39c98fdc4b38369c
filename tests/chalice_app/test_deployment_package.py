"""The Chalice deployment package holds everything the handlers import, in Lambda-ready wheels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow

PROJECT_FILES = ["app.py", "requirements.txt"]
PROJECT_DIRS = ["chalice_app", "functions", "vendor", ".chalice"]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`chalice package` of a copy of the project (Chalice caches builds inside the project)."""
    project = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, project / name)
    for name in PROJECT_DIRS:
        shutil.copytree(REPO / name, project / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "deployed", "deployments"))
    out = tmp_path_factory.mktemp("package")
    chalice = Path(sys.executable).with_name("chalice")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-west-2"}
    # Terraform format: CloudFormation cannot express notifications on an existing bucket.
    subprocess.run([str(chalice), "package", "--pkg-format", "terraform", "--stage", "dev",
                    str(out / "pkg")], cwd=project, env=env, check=True, timeout=600,
                   capture_output=True)
    unpacked = out / "unpacked"
    with zipfile.ZipFile(out / "pkg" / "deployment.zip") as zf:
        zf.extractall(unpacked)
    return out


def handler_strings(package: Path) -> list[str]:
    template = json.loads((package / "pkg" / "chalice.tf.json").read_text())
    functions = template["resource"]["aws_lambda_function"].values()
    return sorted(f["handler"] for f in functions)


def test_every_handler_imports_from_the_unpacked_package_alone(package: Path) -> None:
    handlers = handler_strings(package)
    assert "chalice_app.handlers.on_upload" in handlers
    assert "chalice_app.handlers.ingest_image_group" in handlers
    script = (
        "import importlib, sys\n"
        "for h in sys.argv[2:]:\n"
        "    module, _, name = h.rpartition('.')\n"
        "    assert callable(getattr(importlib.import_module(module), name)), h\n"
        "import PIL, piexif, requests, boto3\n"
        "for m in ('chalice_app', 'functions', 'PIL', 'piexif', 'requests', 'boto3'):\n"
        "    assert sys.modules[m].__file__.startswith(sys.argv[1]), m\n"
        "from PIL import Image\n"
        "Image.new('RGB', (8, 8)).save(__import__('io').BytesIO(), 'JPEG')\n"
        "print('ok')\n"
    )
    unpacked = str(package / "unpacked")
    # -S: no site-packages, -E: no PYTHON* variables; only the stdlib and the package.
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-c", f"import sys; sys.path.insert(0, {unpacked!r}); "
         + script, unpacked, *handlers],
        capture_output=True, text=True, timeout=120, cwd=package, env={"PATH": os.defpath},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_compiled_wheels_fit_the_lambda_runtime(package: Path) -> None:
    # Python 3.11 Lambda runs on a glibc that accepts manylinux2014 / manylinux_2_26 at most.
    wheel_files = list((package / "unpacked").glob("*.dist-info/WHEEL"))
    assert wheel_files
    for wheel in wheel_files:
        tags = [line.split(": ", 1)[1] for line in wheel.read_text().splitlines()
                if line.startswith("Tag: ")]
        platforms = {tag.rsplit("-", 1)[-1] for tag in tags}
        if platforms == {"any"}:
            continue
        assert any(p.startswith(("manylinux2014_", "manylinux_2_17_", "manylinux1_",
                                 "manylinux2010_")) for p in platforms), (wheel, platforms)
