"""SQLite persistence and the service's behaviour behind each operation (see the API contract)."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_PROJECT = "default_project"
LOCAL_USER = "local-user"
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
CREATE TABLE IF NOT EXISTS labels (imageId TEXT, mlModel TEXT, mlModelVersion TEXT,
                                   labelId TEXT, conf REAL, bbox TEXT,
                                   PRIMARY KEY (imageId, mlModel, labelId));
"""

INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
NOT_FOUND = "NOT_FOUND"


class ApiError(Exception):
    """A thrown service error: HTTP 200 with the GraphQL `errors` array, and its code in
    `extensions` (graphql-core copies an original error's `extensions`)."""

    def __init__(self, message: str, code: str = INTERNAL_SERVER_ERROR) -> None:
        super().__init__(message)
        self.extensions = {"code": code}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalise_key(key: str) -> str:
    """`Hash` -> `hash`, `SerialNumber` -> `serialNumber`; `MIMEType`, `GPSLatitude` unchanged."""
    if len(key) > 1 and key[1].isupper():
        return key
    return key[:1].lower() + key[1:]


class _Rows:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


class _SerialConnection:
    """One SQLite connection shared by the server's threads: each statement runs, and its rows
    are fetched, under one lock (a connection is not safe for concurrent use). The lock is
    re-entrant, so a read-then-write sequence can hold it across both."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # Autocommit with a full sync per statement cost ~1.8 ms a write (three per image);
        # write-ahead logging syncs at checkpoints: ~0.04 ms. A crash may lose the last writes of
        # a stand-in's scratch database, nothing more.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self.lock = threading.RLock()

    def execute(self, sql: str, parameters: Any = ()) -> _Rows:
        with self.lock:
            return _Rows(self._db.execute(sql, parameters).fetchall())

    def executescript(self, script: str) -> None:
        with self.lock:
            self._db.executescript(script)

    def close(self) -> None:
        with self.lock:
            self._db.close()


class Store:
    def __init__(self, path: Path | str) -> None:
        self._db = _SerialConnection(path)
        self._db.executescript(_SCHEMA)
        self._lock = self._db.lock

    def close(self) -> None:
        self._db.close()

    # batches

    def create_batch(self, original_file: str) -> dict[str, Any]:
        """createUpload's record: the signed-in user's current project (here, the default)."""
        batch = {
            "_id": f"batch-{uuid.uuid4()}", "projectId": DEFAULT_PROJECT,
            "user": LOCAL_USER, "created": now(), "originalFile": original_file,
        }
        batch["uploadedFile"] = f"{batch['_id']}.zip"
        with self._lock:
            self._db.execute("INSERT INTO batches VALUES (?, ?)", (batch["_id"], json.dumps(batch)))
        return batch

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT doc FROM batches WHERE _id = ?", (batch_id,)).fetchone()
        return self._with_computed(json.loads(row[0])) if row else None

    def batches(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT doc FROM batches ORDER BY _id").fetchall()
        return [self._with_computed(json.loads(r[0])) for r in rows]

    def update_batch(self, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            batch = self._stored_batch(fields["_id"])
            batch.update({k: v for k, v in fields.items() if k in BATCH_FIELDS})
            self._save_batch(batch)
        return self._with_computed(batch)

    def stop_batch(self, batch_id: str) -> dict[str, Any]:
        """stopBatch's checks and its mark; the service then invokes IngestDelete-<stage>."""
        with self._lock:
            batch = self._stored_batch(batch_id)
            if batch.get("processingEnd"):
                raise ApiError("Stack has already terminated", NOT_FOUND)
            if batch.get("stoppingInitiated"):
                raise ApiError("Stack is already scheduled for deletion", NOT_FOUND)
            batch["stoppingInitiated"] = now()
            self._save_batch(batch)
        return batch

    def batch_for_redrive(self, batch_id: str) -> dict[str, Any]:
        batch = self._stored_batch(batch_id)
        if batch.get("processingEnd"):
            raise ApiError("Stack has already terminated", NOT_FOUND)
        return batch

    def _stored_batch(self, batch_id: str) -> dict[str, Any]:
        row = self._db.execute("SELECT doc FROM batches WHERE _id = ?", (batch_id,)).fetchone()
        if not row:
            raise ApiError("Batch not found", NOT_FOUND)
        return json.loads(row[0])

    def _save_batch(self, batch: dict[str, Any]) -> None:
        self._db.execute("UPDATE batches SET doc = ? WHERE _id = ?",
                         (json.dumps(batch), batch["_id"]))

    def batch_counts(self, batch_id: str) -> dict[str, Any]:
        """What the web app shows of a batch: its total, images and imageErrors."""
        batch = self.batch(batch_id) or {}
        images = self._db.execute("SELECT COUNT(*) FROM images WHERE batch = ?",
                                  (batch_id,)).fetchone()[0]
        return {"total": batch.get("total"), "images": images,
                "imageErrors": batch.get("imageErrors", 0),
                "batchErrors": [e["error"] for e in batch.get("errors") or []]}

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

    def create_image(self, raw_md: dict[str, Any],
                     on_saved: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """The service's createImage: validation errors and a failed automation (after the
        save) are returned and recorded as ImageErrors; failures before validation throw,
        after recording an ImageError (but a missing serial throws before anything)."""
        md = {normalise_key(k): v for k, v in raw_md.items()}
        serial = md.get("serialNumber")
        if serial is None:
            raise ApiError("Cannot read properties of undefined (reading 'toString')")
        project_id, serial = self._project_and_serial(md, str(serial))
        image_id = f"{project_id}:{md.get('hash')}"
        errors = self._validation_errors(md, serial)
        saved = None
        if not errors:
            try:
                saved = self._save_image(image_id, project_id, serial, md)
            except sqlite3.IntegrityError:
                errors.append(
                    f'E11000 duplicate key error collection: images index: _id_ dup key: '
                    f'{{ _id: "{image_id}" }}'
                )
        if saved is not None and on_saved is not None:
            try:
                on_saved(saved)
            except Exception as exc:  # the service reports it, the image stays
                errors.append(str(exc))
        attempt = self._attempt(image_id, project_id, md)
        path = md.get("path") or md.get("fileName")
        recorded = [self._image_error(image_id, md.get("batchId"), path, e) for e in errors]
        return {**attempt, "errors": recorded}

    def image(self, image_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT doc FROM images WHERE _id = ?", (image_id,)).fetchone()
        return self._with_labels(json.loads(row[0])) if row else None

    def image_or_not_found(self, image_id: str) -> dict[str, Any]:
        """The `image` query: an error, not null, when there is none."""
        image = self.image(image_id)
        if image is None:
            raise ApiError("Image not found", NOT_FOUND)
        return image

    def images(self, batch_id: str | None) -> list[dict[str, Any]]:
        if batch_id is None:
            rows = self._db.execute("SELECT doc FROM images ORDER BY _id").fetchall()
        else:
            rows = self._db.execute("SELECT doc FROM images WHERE batch = ? ORDER BY _id",
                                    (batch_id,)).fetchall()
        return [self._with_labels(json.loads(r[0])) for r in rows]

    def create_internal_labels(self, image_id: str, labels: list[dict[str, Any]]
                               ) -> dict[str, bool]:
        self.image_or_not_found(image_id)
        with self._lock:
            for label in labels:
                self._db.execute(
                    "INSERT OR REPLACE INTO labels VALUES (:imageId, :mlModel, :mlModelVersion, "
                    ":labelId, :conf, :bbox)",
                    {"conf": None, **label, "imageId": image_id, "bbox": json.dumps(label["bbox"])},
                )
        return {"isOk": True}

    def _with_labels(self, image: dict[str, Any]) -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT mlModel, labelId, conf FROM labels WHERE imageId = ? ORDER BY mlModel",
            (image["_id"],),
        ).fetchall()
        return {**image, "labels": [dict(zip(("mlModel", "labelId", "conf"), r, strict=True))
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

    def _project_and_serial(self, md: dict[str, Any], serial: str) -> tuple[str, str]:
        """The image's project and serial: the batch's (and its overrideSerial), or the
        registered wireless camera's. An unknown batch is thrown after recording an ImageError,
        with the message the service's code gives (it reads the batch's projectId)."""
        batch_id = md.get("batchId")
        if not batch_id:
            row = self._db.execute("SELECT projectId FROM cameras WHERE _id = ?",
                                   (serial,)).fetchone()
            return (row[0] if row else DEFAULT_PROJECT), serial
        batch = self.batch(batch_id)
        if not batch:
            message = "Cannot read properties of null (reading 'projectId')"
            self._image_error(None, batch_id, md.get("path") or md.get("fileName"),
                              message.lower())
            raise ApiError(message)
        return batch["projectId"], batch.get("overrideSerial") or serial

    @staticmethod
    def _validation_errors(md: dict[str, Any], serial: str) -> list[str]:
        errors = [e for e in md.get("errors") or [] if isinstance(e, str)]
        if not serial or serial == "unknown":  # exactly as the service compares
            errors.append("Unknown Serial Number")
        if not md.get("dateTimeOriginal"):
            errors.append("Unknown DateTimeOriginal")
        if int(md.get("imageBytes") or 0) >= MAX_IMAGE_BYTES:
            errors.append("Image Size Exceed 8 MB")
        return errors

    def _save_image(self, image_id: str, project_id: str, serial: str, md: dict[str, Any]
                    ) -> dict[str, Any]:
        doc = {
            "_id": image_id, "projectId": project_id, "batchId": md.get("batchId"),
            "path": md.get("path"), "originalFileName": md.get("fileName"),
            "bucket": md.get("prodBucket"), "fileTypeExtension": md.get("fileTypeExtension"),
            "dateTimeOriginal": md.get("dateTimeOriginal"), "make": md.get("make"),
            "model": md.get("model"), "cameraId": serial,
            "imageWidth": md.get("imageWidth"), "imageHeight": md.get("imageHeight"),
            "imageBytes": md.get("imageBytes"), "mimeType": md.get("MIMEType"),
            "dateAdded": now(),
        }
        with self._lock:
            self._db.execute("INSERT INTO images VALUES (?, ?, ?)",
                             (image_id, md.get("batchId"), json.dumps(doc)))
        return doc

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
