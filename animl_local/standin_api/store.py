"""SQLite persistence and the service's behaviour behind each operation (see the API contract)."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_PROJECT = "default_project"
MAX_IMAGE_BYTES = 8_000_000

BATCH_FIELDS = ("total", "overrideSerial", "originalFile", "uploadedFile", "uploadComplete",
                "ingestionComplete", "processingStart", "processingEnd")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_errors (_id TEXT PRIMARY KEY, batch TEXT, error TEXT,
                                         created TEXT);
CREATE TABLE IF NOT EXISTS image_attempts (_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (_id TEXT PRIMARY KEY, batch TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS image_errors (_id TEXT PRIMARY KEY, batch TEXT, image TEXT, path TEXT,
                                         error TEXT, created TEXT);
CREATE TABLE IF NOT EXISTS cameras (_id TEXT PRIMARY KEY, projectId TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (imageId TEXT, mlModelId TEXT, labelId TEXT, conf REAL,
                                   PRIMARY KEY (imageId, mlModelId, labelId));
"""


class ApiError(Exception):
    """A thrown service error: reported in the GraphQL `errors` array."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalise_key(key: str) -> str:
    """`Hash` -> `hash`, `SerialNumber` -> `serialNumber`; `MIMEType`, `GPSLatitude` unchanged."""
    if len(key) > 1 and key[1].isupper():
        return key
    return key[:1].lower() + key[1:]


class Store:
    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    # batches

    def create_upload(self, original_file: str, project_id: str | None,
                      override_serial: str | None) -> dict[str, Any]:
        batch = {
            "_id": f"batch-{uuid.uuid4()}", "projectId": project_id or DEFAULT_PROJECT,
            "user": "local-user", "created": now(), "originalFile": original_file,
            "overrideSerial": override_serial,
        }
        batch["uploadedFile"] = f"{batch['_id']}.zip"
        with self._lock:
            self._db.execute("INSERT INTO batches VALUES (?, ?)", (batch["_id"], json.dumps(batch)))
        return {"batch": batch["_id"], "user": batch["user"], "url": None}

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT doc FROM batches WHERE _id = ?", (batch_id,)).fetchone()
        return self._with_computed(json.loads(row[0])) if row else None

    def batches(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT doc FROM batches ORDER BY _id").fetchall()
        return [self._with_computed(json.loads(r[0])) for r in rows]

    def update_batch(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT doc FROM batches WHERE _id = ?",
                                   (fields["_id"],)).fetchone()
            if not row:
                raise ApiError("Batch not found")
            batch = json.loads(row[0])
            batch.update({k: v for k, v in fields.items() if k in BATCH_FIELDS})
            self._db.execute("UPDATE batches SET doc = ? WHERE _id = ?",
                             (json.dumps(batch), batch["_id"]))
        return self._with_computed(batch)

    def create_batch_error(self, batch_id: str, error: str) -> dict[str, Any]:
        record = {"_id": str(uuid.uuid4()), "batch": batch_id, "error": error, "created": now()}
        with self._lock:
            self._db.execute("INSERT INTO batch_errors VALUES (:_id, :batch, :error, :created)",
                             record)
        return record

    def _with_computed(self, batch: dict[str, Any]) -> dict[str, Any]:
        errors = self._db.execute(
            "SELECT _id, batch, error, created FROM batch_errors WHERE batch = ? ORDER BY created",
            (batch["_id"],),
        ).fetchall()
        image_errors = self._db.execute(
            "SELECT COUNT(*) FROM image_errors WHERE batch = ?", (batch["_id"],)
        ).fetchone()[0]
        done = bool(batch.get("processingEnd"))
        return {
            **batch,
            "errors": [dict(zip(("_id", "batch", "error", "created"), e, strict=True))
                       for e in errors],
            "imageErrors": image_errors,
            # No inference queues here yet: nothing is ever waiting.
            "remaining": 0 if done else None,
            "dead": 0 if done else None,
        }

    # cameras and images

    def register_camera(self, camera_id: str, project_id: str) -> dict[str, Any]:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO cameras VALUES (?, ?)",
                             (camera_id, project_id))
        return {"_id": camera_id, "projectId": project_id}

    def create_image(self, raw_md: dict[str, Any]) -> dict[str, Any]:
        md = {normalise_key(k): v for k, v in raw_md.items()}
        project_id, serial, overridden = self._project_and_serial(md)
        if not md.get("hash"):
            raise ApiError("Image has no hash")
        image_id = f"{project_id}:{md['hash']}"
        errors = self._validation_errors(md, serial, overridden)
        if not errors:
            try:
                self._save_image(image_id, project_id, serial, md)
            except sqlite3.IntegrityError:
                errors.append(
                    f'E11000 duplicate key error collection: images index: _id_ dup key: '
                    f'{{ _id: "{image_id}" }}'
                )
        attempt = self._attempt(image_id, project_id, md)
        recorded = [self._image_error(image_id, md.get("batchId"), md.get("path"), e)
                    for e in errors]
        return {**attempt, "errors": recorded, "saved": not errors}

    def image(self, image_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT doc FROM images WHERE _id = ?", (image_id,)).fetchone()
        return self._with_labels(json.loads(row[0])) if row else None

    def images(self, batch_id: str | None) -> list[dict[str, Any]]:
        if batch_id is None:
            rows = self._db.execute("SELECT doc FROM images ORDER BY _id").fetchall()
        else:
            rows = self._db.execute("SELECT doc FROM images WHERE batch = ? ORDER BY _id",
                                    (batch_id,)).fetchall()
        return [self._with_labels(json.loads(r[0])) for r in rows]

    def create_internal_labels(self, labels: list[dict[str, Any]]) -> dict[str, bool]:
        with self._lock:
            for label in labels:
                self._db.execute(
                    "INSERT OR REPLACE INTO labels VALUES (:imageId, :mlModelId, :labelId, :conf)",
                    {"conf": None, **label},
                )
        return {"isOk": True}

    def _with_labels(self, image: dict[str, Any]) -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT mlModelId, labelId, conf FROM labels WHERE imageId = ? ORDER BY mlModelId",
            (image["_id"],),
        ).fetchall()
        return {**image, "labels": [dict(zip(("mlModelId", "labelId", "conf"), r, strict=True))
                                    for r in rows]}

    def image_errors(self, batch_id: str | None) -> list[dict[str, Any]]:
        query = "SELECT _id, batch, image, path, error, created FROM image_errors"
        rows = (self._db.execute(query + " ORDER BY created").fetchall() if batch_id is None
                else self._db.execute(query + " WHERE batch = ? ORDER BY created",
                                      (batch_id,)).fetchall())
        keys = ("_id", "batch", "image", "path", "error", "created")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def create_image_error(self, image_id: str, batch_id: str, error: str) -> dict[str, Any]:
        return self._image_error(image_id, batch_id, None, error)

    def _project_and_serial(self, md: dict[str, Any]) -> tuple[str, Any, bool]:
        serial = md.get("serialNumber")
        batch_id = md.get("batchId")
        if batch_id:
            batch = self.batch(batch_id)
            if not batch:
                raise ApiError(f"Batch not found: {batch_id}")
            if batch.get("overrideSerial"):
                return batch["projectId"], batch["overrideSerial"], True
            project_id = batch["projectId"]
        else:
            row = None
            if serial is not None:
                row = self._db.execute("SELECT projectId FROM cameras WHERE _id = ?",
                                       (str(serial),)).fetchone()
            project_id = row[0] if row else DEFAULT_PROJECT
        if serial is None:
            raise ApiError("Cannot read properties of null (reading 'serialNumber')")
        return project_id, serial, False

    @staticmethod
    def _validation_errors(md: dict[str, Any], serial: Any, overridden: bool) -> list[str]:
        errors = [str(e) for e in md.get("errors") or []]
        if not overridden and (not serial or str(serial).lower() == "unknown"):
            errors.append("Unknown Serial Number")
        if not md.get("dateTimeOriginal"):
            errors.append("Unknown DateTimeOriginal")
        if int(md.get("imageBytes") or 0) >= MAX_IMAGE_BYTES:
            errors.append("Image Size Exceed 8 MB")
        return errors

    def _save_image(self, image_id: str, project_id: str, serial: Any, md: dict[str, Any]) -> None:
        doc = {
            "_id": image_id, "projectId": project_id, "batchId": md.get("batchId"),
            "path": md.get("path"), "originalFileName": md.get("fileName"), "hash": md["hash"],
            "bucket": md.get("prodBucket"), "fileTypeExtension": md.get("fileTypeExtension"),
            "dateTimeOriginal": md.get("dateTimeOriginal"), "make": md.get("make"),
            "model": md.get("model"), "serialNumber": str(serial),
            "imageWidth": md.get("imageWidth"), "imageHeight": md.get("imageHeight"),
            "imageBytes": md.get("imageBytes"), "mimeType": md.get("MIMEType"), "created": now(),
        }
        with self._lock:
            self._db.execute("INSERT INTO images VALUES (?, ?, ?)",
                             (image_id, md.get("batchId"), json.dumps(doc)))

    def _attempt(self, image_id: str, project_id: str, md: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT doc FROM image_attempts WHERE _id = ?",
                                   (image_id,)).fetchone()
            if row:
                return json.loads(row[0])
            attempt = {"_id": image_id, "projectId": project_id, "batch": md.get("batchId"),
                       "created": now(), "metadata": md}
            self._db.execute("INSERT INTO image_attempts VALUES (?, ?)",
                             (image_id, json.dumps(attempt)))
            return attempt

    def _image_error(self, image_id: str | None, batch_id: str | None, path: str | None,
                     error: str) -> dict[str, Any]:
        record = {"_id": str(uuid.uuid4()), "batch": batch_id, "image": image_id, "path": path,
                  "error": error, "created": now()}
        with self._lock:
            self._db.execute(
                "INSERT INTO image_errors VALUES (:_id, :batch, :image, :path, :error, :created)",
                record,
            )
        return record
