"""An upload's body, read with bounded memory: JSON Lines as they are, or a JSON array turned
into one line per item (so that an error's `line` is the item's 1-based index).

The body is spooled to a temporary file while it is counted, so a body over
RATERHUB_API_MAX_UPLOAD_BYTES is refused (413) before it costs more than that much disk.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass

from django.core.files import File

from comparisons.imports import count_lines

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
NDJSON_TYPES = {"application/x-ndjson", "application/jsonl", "application/x-jsonlines"}
JSON_TYPES = {"application/json"}


class UploadTooLarge(Exception):
    pass


class UnsupportedBody(Exception):
    pass


class NotAnArray(ValueError):
    pass


@dataclass
class Upload:
    file: File  # binary, rewound: one comparison per line
    lines: int


def _spool(stream, *, max_bytes: int) -> tempfile.SpooledTemporaryFile:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned open
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            spool.close()
            raise UploadTooLarge
        spool.write(chunk)
    spool.seek(0)
    return spool


def _array_to_lines(spool) -> tempfile.SpooledTemporaryFile:
    try:
        items = json.load(spool)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotAnArray(f"The body is not valid JSON: {exc}") from None
    finally:
        spool.close()
    if not isinstance(items, list):
        raise NotAnArray("A JSON body must be an array of comparisons (or send JSON Lines).")
    lines = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned open
    for item in items:
        # One line per item, whatever it is: the import reports a non-object by its number.
        lines.write(json.dumps(item, ensure_ascii=False).encode() + b"\n")
    lines.seek(0)
    return lines


def read_upload(*, stream, content_type: str, content_length: int | None, max_bytes: int) -> Upload:
    """The body as JSON Lines; UploadTooLarge, UnsupportedBody or NotAnArray when it cannot be."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in NDJSON_TYPES | JSON_TYPES:
        raise UnsupportedBody(media_type)
    if content_length is not None and content_length > max_bytes:
        raise UploadTooLarge
    spool = _spool(stream, max_bytes=max_bytes)
    if media_type in JSON_TYPES:
        spool = _array_to_lines(spool)
    upload = File(spool, name="api-upload.jsonl")
    return Upload(file=upload, lines=count_lines(upload))
