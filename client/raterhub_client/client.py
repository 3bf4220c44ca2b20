"""The client: one HTTP session with retries, and objects for a project and its jobs.

Transient failures (429 with its Retry-After, 502/503/504, a dropped or refused connection)
are retried with exponential backoff. An upload that is retried is sent again with
`skip_existing=1`: external ids are unique per project, so a chunk that had landed before its
answer was lost is skipped, never duplicated. Every other failure raises RaterHubError, which
carries the server's `detail` and, for a rejected upload, its line errors.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

RETRY_STATUSES = {429, 502, 503, 504}
DEFAULT_CHUNK_ROWS = 5000  # the server's default RATERHUB_IMPORT_SYNC_MAX_LINES
DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024  # well under the server's default upload limit


class RaterHubError(Exception):
    """A request that failed: `status` (None if no answer), `detail`, and for a rejected
    upload `errors` ([{"line": n, "message": ...}], lines counted within the chunk sent, and
    `first_row`, the 0-based index of that chunk's first row in what you pushed)."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        errors: list[dict] | None = None,
        error_count: int | None = None,
        first_row: int = 0,
    ):
        self.detail = detail
        self.status = status
        self.errors = errors or []
        self.error_count = error_count if error_count is not None else len(self.errors)
        self.first_row = first_row
        lines = "".join(f"\n  line {e['line']}: {e['message']}" for e in self.errors[:10])
        super().__init__(f"{status or 'no answer'}: {detail}{lines}")


def _progress_bar(**kwargs):
    from tqdm.auto import tqdm  # a widget in notebooks, text in a terminal

    return tqdm(**kwargs)


class RaterHub:
    """A connection to one RaterHub site, as the token's user.

    `url` and `token` default to the environment's RATERHUB_URL and RATERHUB_TOKEN.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 120.0,
        retries: int = 6,
        backoff: float = 0.5,
        progress: bool = True,
    ):
        url = url or os.environ.get("RATERHUB_URL")
        token = token or os.environ.get("RATERHUB_TOKEN")
        if not url or not token:
            raise ValueError("Give url and token, or set RATERHUB_URL and RATERHUB_TOKEN.")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.show_progress = progress
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Token {token}", "User-Agent": "raterhub-client/0.1"}
        )

    def __repr__(self) -> str:
        return f"RaterHub({self.url!r})"

    # --- HTTP ------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.url}{path}"

    def request(self, method: str, path: str, *, on_retry=None, **kwargs) -> requests.Response:
        """One call with retries of transient failures; raises RaterHubError for the rest.
        `on_retry(kwargs)` may change the request before it is sent again."""
        kwargs.setdefault("timeout", self.timeout)
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, self._url(path), **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == self.retries:
                    raise RaterHubError(f"{type(exc).__name__}: {exc}") from exc
                self._sleep(attempt, None)
            else:
                if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                    if response.status_code >= 400:
                        raise _error(response)
                    return response
                self._sleep(attempt, response.headers.get("Retry-After"))
            if on_retry is not None:
                on_retry(kwargs)
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2**attempt * (1 + random.random() / 2)
        if retry_after:
            with contextlib.suppress(ValueError):  # an HTTP date: keep our own delay
                delay = max(delay, float(retry_after))
        time.sleep(min(delay, 60.0))

    def get(self, path: str, **kwargs) -> Any:
        return self.request("GET", path, **kwargs).json()

    def pages(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a paginated list, following `next` links."""
        url: str | None = path
        while url:
            page = self.get(url, params=params)
            params = None  # the next link carries them
            yield from page["results"]
            url = page["next"]

    # --- objects ---------------------------------------------------------------------------

    def project(self, slug: str) -> Project:
        return Project(self, slug)

    def projects(self) -> list[dict]:
        return list(self.pages("/api/v1/projects/"))

    def create_project(self, slug: str, name: str, **settings: Any) -> Project:
        self.request("POST", "/api/v1/projects/", json={"slug": slug, "name": name, **settings})
        return Project(self, slug)

    def export_job(self, export_id: int) -> ExportJob:
        return ExportJob(self, f"{self.url}/api/v1/exports/{export_id}/")


def _error(response: requests.Response) -> RaterHubError:
    try:
        data = response.json()
    except ValueError:
        data = {"detail": response.text[:500] or response.reason}
    if not isinstance(data, dict):
        data = {"detail": str(data)}
    return RaterHubError(
        str(data.get("detail") or response.reason),
        status=response.status_code,
        errors=data.get("errors"),
        error_count=data.get("error_count"),
    )


class Project:
    def __init__(self, hub: RaterHub, slug: str):
        self.hub = hub
        self.slug = slug
        self.path = f"/api/v1/projects/{quote(slug)}/"

    def __repr__(self) -> str:
        return f"Project({self.slug!r})"

    def info(self) -> dict:
        """The project's settings, status and progress."""
        return self.hub.get(self.path)

    def update(self, **fields: Any) -> dict:
        """Change settings or status, e.g. `update(status="paused")`."""
        return self.hub.request("PATCH", self.path, json=fields).json()

    def progress(self) -> dict:
        """{"comparisons", "complete", "judgments", "target"}."""
        return self.info()["progress"]

    def metrics(self) -> dict:
        return self.hub.get(f"{self.path}metrics/")

    def comparisons(self, *, complete: bool | None = None, external_id: str | None = None):
        params: dict[str, Any] = {}
        if complete is not None:
            params["complete"] = int(complete)
        if external_id is not None:
            params["external_id"] = external_id
        return self.hub.pages(f"{self.path}comparisons/", params)

    def judgments(self, since: Any = None, *, page_size: int = 1000) -> Iterator[dict]:
        """Raw judgments, oldest first, one cursor page at a time; `since` a datetime or ISO text."""
        params: dict[str, Any] = {"page_size": page_size}
        if since is not None:
            params["since"] = since.isoformat() if hasattr(since, "isoformat") else str(since)
        return self.hub.pages(f"{self.path}judgments/", params)

    def push(
        self,
        rows: Any,
        *,
        skip_existing: bool = False,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        progress: bool | None = None,
    ) -> dict:
        """Upload comparisons: a list or iterable of dicts, a `datasets.Dataset`, a pandas
        DataFrame, or the path of a JSONL file. Sent in chunks the server imports at once,
        each all or nothing; a rejected chunk raises RaterHubError with its line errors (the
        chunks before it stay imported: push again with skip_existing=True to resume).
        Returns {"created": n, "skipped": m}."""
        total = _length(rows)
        show = self.hub.show_progress if progress is None else progress
        bar = _progress_bar(total=total, unit="rows", desc=f"push {self.slug}", disable=not show)
        counts = {"created": 0, "skipped": 0}
        sent = 0
        try:
            for chunk, n in _chunks(_lines(rows), chunk_rows, chunk_bytes):
                result = self._push_chunk(chunk, skip_existing=skip_existing, first_row=sent)
                counts["created"] += result["created"]
                counts["skipped"] += result["skipped"]
                sent += n
                bar.update(n)
        finally:
            bar.close()
        return counts

    def _push_chunk(self, body: bytes, *, skip_existing: bool, first_row: int) -> dict:
        def skip_on_retry(kwargs: dict) -> None:
            # The first try may have landed before its answer was lost: skip what it created.
            kwargs["params"] = {"skip_existing": 1}

        try:
            response = self.hub.request(
                "POST",
                f"{self.path}comparisons/",
                data=body,
                params={"skip_existing": int(skip_existing)},
                headers={"Content-Type": "application/x-ndjson"},
                on_retry=skip_on_retry,
            )
        except RaterHubError as exc:
            exc.first_row = first_row
            raise
        if response.status_code == 202:  # over the server's sync limit: its import job
            job = ImportJob(self.hub, response.json()["url"]).wait(progress=False)
            return {"created": job["created"], "skipped": job["skipped"]}
        return response.json()

    def export(self, format: str, **options: Any) -> ExportJob:
        """Start an export, e.g. `export("trl", min_agreement=0.66)`; returns its job."""
        created = self.hub.request(
            "POST", f"{self.path}exports/", json={"format": format, **options}
        ).json()
        return ExportJob(self.hub, created["url"])


def _length(rows: Any) -> int | None:
    if isinstance(rows, (str, os.PathLike)):
        return None
    try:
        return len(rows)
    except TypeError:
        return None


def _clean(value: Any) -> Any:
    """A pandas/numpy value as plain JSON (NaN, a missing cell, becomes absent)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return value


def _lines(rows: Any) -> Iterator[bytes]:
    """Each row as one JSON line (bytes, with its newline)."""
    if isinstance(rows, (str, os.PathLike)):
        with open(rows, "rb") as fh:
            for line in fh:
                if line.strip():
                    yield line if line.endswith(b"\n") else line + b"\n"
        return
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame
        columns = list(rows.columns)
        for values in rows.itertuples(index=False, name=None):
            record = {c: _clean(v) for c, v in zip(columns, values, strict=True)}
            yield _dump({k: v for k, v in record.items() if v is not None})
        return
    for row in rows:  # dicts, or a datasets.Dataset (its rows are dicts)
        yield _dump(row)


def _dump(row: Any) -> bytes:
    return (json.dumps(row, ensure_ascii=False, default=_clean) + "\n").encode()


def _chunks(lines: Iterable[bytes], max_rows: int, max_bytes: int) -> Iterator[tuple[bytes, int]]:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and (len(chunk) >= max_rows or size + len(line) > max_bytes):
            yield b"".join(chunk), len(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield b"".join(chunk), len(chunk)


class _Job:
    final = ("succeeded", "failed")

    def __init__(self, hub: RaterHub, url: str):
        self.hub = hub
        self.url = url
        self.data: dict = {}

    @property
    def id(self) -> int:
        return int(self.url.rstrip("/").rsplit("/", 1)[1])

    def refresh(self) -> dict:
        self.data = self.hub.get(self.url)
        return self.data

    @property
    def status(self) -> str:
        return (self.data or self.refresh())["status"]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def _fraction(self) -> float:
        return 0.0

    def wait(self, timeout: float | None = None, *, progress: bool | None = None):
        """Poll (0.5 s, growing to 5 s) until the job has finished; a progress bar meanwhile.
        Raises RaterHubError if it failed, TimeoutError after `timeout` seconds."""
        show = self.hub.show_progress if progress is None else progress
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.5
        bar = _progress_bar(
            total=100, unit="%", desc=f"{type(self).__name__} {self.id}", disable=not show
        )
        try:
            while self.refresh()["status"] not in self.final:
                bar.update(int(self._fraction() * 100) - bar.n)
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise TimeoutError(f"{self.url} still {self.data['status']} after {timeout} s")
                time.sleep(delay)
                delay = min(delay * 1.5, 5.0)
            bar.update(100 - bar.n)
        finally:
            bar.close()
        if self.data["status"] == "failed":
            raise RaterHubError(
                self.data.get("error") or "the job failed",
                errors=self.data.get("errors"),
                error_count=self.data.get("error_count"),
            )
        return self


class ImportJob(_Job):
    def _fraction(self) -> float:
        total = self.data.get("total_lines") or 0
        return min(self.data.get("lines_read", 0) / total, 1.0) if total else 0.0


class ExportJob(_Job):
    def __repr__(self) -> str:
        return f"ExportJob({self.id}, {self.data.get('status', '?')})"

    def _fraction(self) -> float:
        return float(self.data.get("progress") or 0.0)

    def download(self, path: str | os.PathLike) -> Path:
        """Stream the finished file to `path` (waiting for the job first); returns the path.
        Written beside it under a temporary name and renamed, so no partial file is left."""
        if self.status not in self.final:
            self.wait()
        elif self.data["status"] == "failed":
            self.wait()  # raises with the job's error
        target = Path(path)
        response = self.hub.request("GET", self.data["download_url"], stream=True)
        with tempfile.NamedTemporaryFile(dir=target.parent or ".", delete=False) as tmp:
            try:
                for block in response.iter_content(1024 * 1024):
                    tmp.write(block)
            except BaseException:
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, target)
        self.path = target
        return target

    def to_dataset(self, path: str | os.PathLike | None = None, **load_kwargs: Any):
        """The export as a `datasets.Dataset` (needs the `datasets` extra): the file `download`
        fetched, or downloaded now (to `path`, or a temporary folder)."""
        try:
            import datasets
        except ImportError:
            raise ImportError("to_dataset needs: pip install 'raterhub-client[datasets]'") from None
        if self.status not in self.final:
            self.wait()
        fmt = self.data["format"]
        kind = "parquet" if fmt.endswith("parquet") else "csv" if fmt.endswith("csv") else "json"
        extension = {"json": "jsonl"}.get(kind, kind)
        if path is None and getattr(self, "path", None) and Path(self.path).exists():
            local = Path(self.path)  # downloaded already
        else:
            if path is None:
                path = Path(tempfile.mkdtemp(prefix="raterhub-")) / f"{self.id}-{fmt}.{extension}"
            local = self.download(path)
        return datasets.load_dataset(kind, data_files=str(local), split="train", **load_kwargs)
