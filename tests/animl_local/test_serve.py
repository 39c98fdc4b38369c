"""A served local stage: operator commands in other processes work on it as on AWS."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest

from animl_local.samples import write_sample_folder
from tests.leftovers import eventually

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow


@contextmanager
def serving(logs: Path, *options: str, serve_options: tuple[str, ...] = ()
            ) -> Iterator[dict[str, str]]:
    """`animl-ingest [options] serve [serve_options]` on a free port, its stderr in `logs`;
    yields the environment for other commands."""
    with logs.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "animl_local.cli", *options, "serve",
                                 "--port", "0", *serve_options],
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, **STACKS_ON_ABORT})
        try:
            line = proc.stdout.readline()
            endpoint = re.search(r"AWS_ENDPOINT_URL=(\S+)", line)
            assert endpoint, line + logs.read_text()
            yield {**os.environ, "AWS_ENDPOINT_URL": endpoint.group(1),
                   "AWS_DEFAULT_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing"}
        finally:
            # SIGTERM unwinds the stage: its workers, servers and scratch folder go with it
            # (the autouse leftovers check), and the exit status says how it ended.
            assert terminated(proc, logs) == 143
            proc.stdout.close()


# faulthandler: a SIGABRT writes every thread's stack to stderr before the process ends.
STACKS_ON_ABORT = {"PYTHONFAULTHANDLER": "1"}


def terminated(proc: subprocess.Popen[str], logs: Path) -> int:
    """SIGTERM to serve, and its exit status. One that does not stop is aborted, and the
    failure shows where each of its threads was (seen once under load, not reproduced)."""
    proc.terminate()
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=30)
        raise AssertionError("serve did not stop within 30 s of SIGTERM; its stacks:\n"
                             + logs.read_text()[-20000:]) from None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, str]]:
    with serving(tmp_path / "serve.log") as env:
        yield env


def cli(env: dict[str, str], *args: str, stderr: list[str] | None = None) -> str:
    """The command's stdout; its stderr is appended to `stderr` when given."""
    done = subprocess.run([sys.executable, "-m", "animl_local.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    if stderr is not None:
        stderr.append(done.stderr)
    return done.stdout


def wait_listed(env: dict[str, str], batch_id: str, status: str) -> None:
    eventually(lambda: batch_id in cli(env, "executions", "list", "--status", status,
                                       "--stage", "local"),
               seconds=90, poll=0.5, what=f"{batch_id} {status}")


def test_uploads_and_inspection_from_other_processes(served: dict[str, str],
                                                     tmp_path: Path) -> None:
    write_sample_folder(tmp_path / "cards", count=3)
    batch_id = cli(served, "upload", str(tmp_path / "cards"), "--stage", "local").strip()
    assert batch_id.startswith("batch-")
    wait_listed(served, batch_id, "SUCCEEDED")
    page = tmp_path / "batch.html"
    described = cli(served, "executions", "describe", batch_id, "--stage", "local",
                    "--html", str(page))
    assert '"processingEnd": "' in described and '"total": 3' in described
    # The thumbnails travel inside the page (the serving bucket is private); test_html_report
    # opens such a page in Chromium.
    shown = page.read_text()
    assert 'id="thumbnails" data-total="3"' in shown
    assert shown.count('src="data:image/jpeg;base64,') == 3

    archive = tmp_path / "broken.zip"
    # Not a zip at all (a zip cut short is now read from its local headers, and succeeds).
    archive.write_bytes(b"not a zip")
    bad = cli(served, "upload", str(archive), "--stage", "local").strip()
    wait_listed(served, bad, "FAILED")
    history = cli(served, "executions", "history", bad, "--stage", "local")
    assert "BatchFailed" in history
    assert "Bad archive" in cli(served, "executions", "describe", bad, "--stage", "local")

    # serve's log: one line per batch event, none per HTTP request (there were hundreds).
    logged = (tmp_path / "serve.log").read_text()
    events = [line.split(" ", 1)[1] for line in logged.splitlines()]
    assert events == [f"execution {batch_id} started (upload seen)",
                      f"execution {batch_id} ended SUCCEEDED",
                      f"execution {bad} started (upload seen)",
                      f"execution {bad} ended FAILED"], logged


def test_verbose_serve_logs_the_requests_too(tmp_path: Path) -> None:
    with serving(tmp_path / "serve.log", serve_options=("--verbose",)) as env:
        cli(env, "executions", "list", "--stage", "local")
    assert "HTTP/1.1" in (tmp_path / "serve.log").read_text()


def test_debug_never_prints_the_api_key(tmp_path: Path) -> None:
    write_sample_folder(tmp_path / "cards", count=2)
    logs = tmp_path / "serve.log"
    outputs = []
    with serving(logs, "--debug") as env:
        batch_id = cli(env, "--debug", "upload", str(tmp_path / "cards"), "--stage", "local",
                       stderr=outputs)
        outputs.append(batch_id)
        wait_listed(env, batch_id.strip(), "SUCCEEDED")
        outputs.append(cli(env, "--debug", "reprocess", batch_id.strip(), "--stage", "local",
                           stderr=outputs))
        secrets = boto3.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"],
                               region_name="us-west-2")
        api_key = json.loads(secrets.get_secret_value(SecretId="api-key-local")
                             ["SecretString"])["apikey"]
    outputs.append(logs.read_text())
    everything = "\n".join(outputs)
    # The wire log was on, the secret was read (by the operator command and by the handlers).
    assert "Response body" in everything and "GetSecretValue" in everything
    assert everything.count("operation_name=GetSecretValue") + everything.count(
        "OperationModel(name=GetSecretValue)") >= 2
    assert api_key not in everything


def without_credentials(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID",
                                                      "AWS_SECRET_ACCESS_KEY")}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "animl_local.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_served_stage_needs_no_credentials_and_names_what_is_missing(
        served: dict[str, str], tmp_path: Path) -> None:
    # Exactly what serve prints, and no AWS keys: the local endpoint accepts any.
    env = without_credentials(served)
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true")
    listed = run(env, "executions", "list", "--stage", "local")
    assert listed.returncode == 0, listed.stderr

    # Every command on a stage checks it first, before reading or zipping anything.
    write_sample_folder(tmp_path / "cards", count=1)
    for command in (["executions", "list"], ["executions", "describe", "batch-nope"],
                    ["executions", "history", "batch-nope"], ["upload", str(tmp_path / "cards")],
                    ["stop", "batch-nope"], ["redrive", "batch-nope"],
                    ["reprocess", "batch-nope"], ["parking-lot", "replay"]):
        typo = run(env, *command, "--stage", "lcoal")
        assert typo.returncode == 3, (command, typo.stderr)
        [line] = typo.stderr.strip().splitlines()
        assert "stage 'lcoal' does not exist at http://127.0.0.1:" in line, command
        assert "animl-ingest deploy --stage lcoal" in line and "Traceback" not in line

    for command in (["executions", "describe", "batch-nope"], ["executions", "history",
                                                             "batch-nope"],
                    ["stop", "batch-nope"], ["redrive", "batch-nope"],
                    ["reprocess", "batch-nope"]):
        unknown = run(env, *command, "--stage", "local")
        assert unknown.returncode == 3, (command, unknown.stderr)
        [line] = unknown.stderr.strip().splitlines()
        assert "batch batch-nope has no" in line and "stage local" in line, line


def test_the_line_serve_prints_is_all_another_shell_needs(tmp_path: Path) -> None:
    """Pasted into a shell with no AWS settings at all: operator commands reach the local
    stage with no --stage and no credentials."""
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    bare.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true")
    with (tmp_path / "serve.log").open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "animl_local.cli", "serve", "--port", "0"],
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**bare, **STACKS_ON_ABORT})
        try:
            pasted = proc.stdout.readline().strip()
            words = shlex.split(pasted)
            assert words[0] == "export", pasted  # checked before waiting for a second line
            said = proc.stdout.readline()
            env = {**bare, **dict(word.split("=", 1) for word in words[1:])}
            assert set(env) - set(bare) == {"AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"}
            assert "paste the line above" in said

            listed = run(env, "executions", "list")
            assert listed.returncode == 0, listed.stderr
            write_sample_folder(tmp_path / "cards", count=1)
            uploaded = run(env, "upload", str(tmp_path / "cards"))
            assert uploaded.returncode == 0, uploaded.stderr
            assert uploaded.stdout.startswith("batch-") and uploaded.stderr == ""
            wait_listed(env, uploaded.stdout.strip(), "SUCCEEDED")
            unknown = run(env, "redrive", "batch-nope")
            assert unknown.returncode == 3, unknown.stderr
            assert "stage local" in unknown.stderr  # the served stage, not dev
        finally:
            assert terminated(proc, tmp_path / "serve.log") == 143
            proc.stdout.close()
