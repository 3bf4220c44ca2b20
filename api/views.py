"""The token API (/api/v1/): thin function views over the services of comparisons/.

Every view loads its project through `_get_project`, which scopes by
`Project.objects.visible_to(user)`: a project the caller does not lead is a 404, whatever
exists. Authentication (api.authentication), the lead check (api.permissions) and the
per-token rate limit (api.throttling) are the defaults of every view (settings.REST_FRAMEWORK).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import (
    NotFound,
    PermissionDenied,
    UnsupportedMediaType,
    ValidationError,
)
from rest_framework.response import Response

from api import serializers as s
from api.models import Webhook
from api.pagination import IdCursorPagination
from api.uploads import NotAnArray, UnsupportedBody, UploadTooLarge, read_upload
from api.webhooks import create_webhook
from comparisons.exports import ExportError, create_export_job, parse_options
from comparisons.exports.rows import JudgmentJsonlWriter
from comparisons.exports.source import judgment_rows, rulings
from comparisons.imports import create_import_job, import_comparisons
from comparisons.metrics import latest_snapshot
from comparisons.models import Comparison, ExportFormat, ExportJob, ImportJob, Judgment, Project
from comparisons.queue import OVERLAP_FIELDS, set_overlap_policy
from comparisons.tasks import run_import, send_export, send_on_commit

DETAIL = inline_serializer("Error", {"detail": serializers.CharField()})
ERRORS = {
    401: OpenApiResponse(DETAIL, "No, invalid, revoked or expired token."),
    403: OpenApiResponse(DETAIL, "The account leads no project."),
    404: OpenApiResponse(DETAIL, "Not found, or a project the caller does not lead."),
    429: OpenApiResponse(DETAIL, "Rate limited: see Retry-After."),
}
INVALID = {400: OpenApiResponse(DETAIL, "Invalid input.")}


def _page_of(name: str, serializer) -> serializers.Serializer:
    """The schema of a cursor page: {"results": [...], "next": url | null}."""
    return inline_serializer(
        f"{name}Page",
        {"results": serializer(many=True), "next": serializers.URLField(allow_null=True)},
    )


def _visible(request):
    return Project.objects.visible_to(request.user)


def _get_project(request, slug: str, *, progress: bool = False) -> Project:
    projects = _visible(request)
    return get_object_or_404(
        projects.with_progress().prefetch_related("reviewers") if progress else projects, slug=slug
    )


def _flag(request, name: str) -> bool | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValidationError({name: ["Use 1 or 0 (true or false)."]})


# --- projects -------------------------------------------------------------------------------


@extend_schema(
    methods=["GET"],
    operation_id="projects_list",
    responses={200: _page_of("Project", s.ProjectSerializer), **ERRORS},
    parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
    summary="The projects you lead (superusers: all)",
)
@extend_schema(
    methods=["POST"],
    request=s.ProjectSerializer,
    responses={201: s.ProjectSerializer, **INVALID, **ERRORS},
    summary="Create a project; you become its lead",
)
@api_view(["GET", "POST"])
def projects(request):
    if request.method == "POST":
        if not request.user.has_perm("comparisons.add_project"):
            raise PermissionDenied("This account may not create projects.")
        serializer = s.ProjectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            project = serializer.save(created_by=request.user)
            project.leads.add(request.user)
        project = (
            Project.objects.filter(pk=project.pk)
            .with_progress()
            .prefetch_related("reviewers")
            .get()
        )
        return Response(s.ProjectSerializer(project).data, status=status.HTTP_201_CREATED)
    paginator = IdCursorPagination()
    page = paginator.paginate_queryset(
        _visible(request).with_progress().prefetch_related("reviewers"), request
    )
    return paginator.get_paginated_response(s.ProjectSerializer(page, many=True).data)


@extend_schema(methods=["GET"], responses={200: s.ProjectSerializer, **ERRORS})
@extend_schema(
    methods=["PATCH"],
    request=s.ProjectSerializer,
    responses={200: s.ProjectSerializer, **INVALID, **ERRORS},
    summary="Change settings or status",
)
@api_view(["GET", "PATCH"])
def project_detail(request, slug: str):
    project = _get_project(request, slug, progress=True)
    if request.method == "PATCH":
        serializer = s.ProjectSerializer(project, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        # The queue owns open_slots and completed_at: overlap settings go through
        # set_overlap_policy, which recomputes every comparison under them.
        policy = {
            name: serializer.validated_data.pop(name)
            for name in OVERLAP_FIELDS
            if name in serializer.validated_data
        }
        reviewers = serializer.validated_data.pop("reviewers", None)
        with transaction.atomic():
            serializer.save()
            if policy:
                set_overlap_policy(project, **policy)
            if reviewers is not None:
                project.reviewers.set(reviewers)
        project = _get_project(request, slug, progress=True)
    return Response(s.ProjectSerializer(project).data)


# --- comparisons ----------------------------------------------------------------------------


UPLOAD_BODY = {
    "application/x-ndjson": {"type": "string", "description": "One comparison per line."},
    "application/json": {"type": "array", "items": {"type": "object"}},
}


@extend_schema(
    methods=["GET"],
    parameters=[
        OpenApiParameter("external_id", str),
        OpenApiParameter("complete", bool, description="Only complete (1) or incomplete (0)."),
        OpenApiParameter("cursor", str),
        OpenApiParameter("page_size", int),
    ],
    operation_id="projects_comparisons_list",
    responses={200: _page_of("Comparison", s.ComparisonSerializer), **INVALID, **ERRORS},
    summary="Comparisons, each with its counted judgments (cursor-paginated)",
)
@extend_schema(
    methods=["POST"],
    request=UPLOAD_BODY,
    parameters=[OpenApiParameter("skip_existing", bool)],
    responses={
        201: s.UploadResultSerializer,
        202: OpenApiResponse(s.JobCreatedSerializer, "Large body: imported by a background job."),
        400: OpenApiResponse(s.UploadErrorSerializer, "Rejected whole: every bad line."),
        413: OpenApiResponse(DETAIL, "Over RATERHUB_API_MAX_UPLOAD_BYTES."),
        415: OpenApiResponse(DETAIL, "Neither JSON Lines nor JSON."),
        **ERRORS,
    },
    summary="Upload comparisons (JSON Lines or a JSON array), all or nothing",
)
@api_view(["GET", "POST"])
def comparisons(request, slug: str):
    project = _get_project(request, slug)
    if request.method == "POST":
        return _upload(request, project)
    qs = Comparison.objects.filter(project=project).prefetch_related("responses")
    if external_id := request.query_params.get("external_id"):
        qs = qs.filter(external_id=external_id)
    complete = _flag(request, "complete")
    if complete is not None:
        done = Comparison.objects.filter(project=project).complete()
        qs = (
            qs.filter(pk__in=done.values("pk"))
            if complete
            else qs.exclude(pk__in=done.values("pk"))
        )
    paginator = IdCursorPagination()
    page = paginator.paginate_queryset(qs, request)
    return paginator.get_paginated_response(s.ComparisonSerializer(page, many=True).data)


def _upload(request, project: Project) -> Response:
    skip_existing = bool(_flag(request, "skip_existing"))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        length = None
    limit = settings.RATERHUB_API_MAX_UPLOAD_BYTES
    try:
        upload = read_upload(
            stream=request._request,  # the raw body: DRF's parsers would read it into memory
            content_type=request.content_type or "",
            content_length=length,
            max_bytes=limit,
        )
    except UploadTooLarge:
        return Response(
            {
                "detail": f"The body is over the limit of {limit:,} bytes "
                "(RATERHUB_API_MAX_UPLOAD_BYTES): send it in several requests."
            },
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    except UnsupportedBody as exc:
        raise UnsupportedMediaType(
            str(exc),
            detail="Send application/x-ndjson (JSON Lines) or application/json (an array).",
        ) from None
    except NotAnArray as exc:
        return Response(
            {"detail": str(exc), "errors": [], "error_count": 0}, status=status.HTTP_400_BAD_REQUEST
        )
    with upload.file:
        if upload.lines > settings.RATERHUB_IMPORT_SYNC_MAX_LINES:
            job = create_import_job(
                project=project,
                source=upload.file,
                skip_existing=skip_existing,
                requested_by=request.user,
                total_lines=upload.lines,
            )
            send_on_commit(run_import, job.pk)  # a broker that is down leaves the job queued
            url = request.build_absolute_uri(reverse("api:import_detail", args=[job.pk]))
            return Response(
                {"id": job.pk, "status": job.status, "url": url},
                status=status.HTTP_202_ACCEPTED,
                headers={"Location": url},
            )
        result = import_comparisons(project, upload.file, skip_existing=skip_existing)
    if not result.ok:
        return Response(_rejected(result.errors, result.error_count), status=400)
    return Response({"created": result.created, "skipped": result.skipped}, status=201)


def _rejected(errors, count: int) -> dict:
    exists = any(getattr(e, "code", None) == "exists" for e in errors)
    hint = " Add ?skip_existing=1 to skip ids the project already has." if exists else ""
    return {
        "detail": f"Rejected: {count} bad line(s); nothing was imported.{hint}",
        "errors": [{"line": e.line, "message": e.message} for e in errors],
        "error_count": count,
    }


@extend_schema(responses={200: s.ImportJobSerializer, **ERRORS}, summary="A background import")
@api_view(["GET"])
def import_detail(request, pk: int):
    job = get_object_or_404(ImportJob.objects.filter(project__in=_visible(request)), pk=pk)
    return Response(s.ImportJobSerializer(job).data)


# --- judgments ------------------------------------------------------------------------------


def _since(request):
    text = request.query_params.get("since")
    if not text:
        return None
    try:  # read as the export reads its `since` option: one meaning of a date
        return parse_options("judgments", since=text).since
    except ValueError as exc:  # ExportError, or a well-formed but impossible date
        raise ValidationError({"since": [f"An ISO 8601 date or date-time: {exc}"]}) from None


def _judgments_page(rows, next_link: str | None) -> HttpResponse:
    """A page of judgments written by the `judgments` export's own JSONL writer (each row is
    that export's line, byte for byte), its lines joined into the page's array: several times
    faster than serializing a dict per row."""
    buffer = io.BytesIO()
    JudgmentJsonlWriter(buffer).write(rows)
    # The writer escapes newlines inside values, so each "\n" ends a row.
    items = buffer.getvalue().rstrip(b"\n").replace(b"\n", b",")
    body = b'{"results":[' + items + b'],"next":' + json.dumps(next_link).encode() + b"}"
    return HttpResponse(body, content_type="application/json")


@extend_schema(
    parameters=[
        OpenApiParameter("since", OpenApiTypes.DATETIME, description="Created at or after."),
        OpenApiParameter("cursor", str),
        OpenApiParameter("page_size", int),
    ],
    operation_id="projects_judgments_list",
    responses={200: _page_of("Judgment", s.JudgmentSerializer), **INVALID, **ERRORS},
    summary="Raw judgments, oldest first (cursor-paginated), for incremental pulls",
)
@api_view(["GET"])
def judgments(request, slug: str):
    project = _get_project(request, slug)
    qs = Judgment.objects.filter(project=project)
    since = _since(request)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    paginator = IdCursorPagination()
    verdicts = rulings(project)  # the adjudication in force per comparison, as in the export
    page = paginator.paginate_queryset(
        qs,
        request,
        rows=lambda ordered, limit: list(judgment_rows(project, ordered[:limit], verdicts)),
        id_of=lambda row: row.judgment_id,
    )
    return _judgments_page(page, paginator.get_next_link())


# --- exports --------------------------------------------------------------------------------


@extend_schema(
    request=inline_serializer(
        "ExportRequest",
        {
            "format": serializers.ChoiceField(choices=ExportFormat.choices),
            "options": serializers.DictField(
                required=False,
                help_text="Not a field: the export options (comparisons.exports.OPTIONS, e.g. "
                "min_agreement) go at the top level beside format.",
            ),
        },
    ),
    responses={202: s.JobCreatedSerializer, **INVALID, **ERRORS},
    summary="Start an export (a background job)",
)
@api_view(["POST"])
def exports(request, slug: str):
    project = _get_project(request, slug)
    if not isinstance(request.data, dict):
        raise ValidationError({"detail": 'A JSON object: {"format": ..., options...}.'})
    options = dict(request.data)
    fmt = options.pop("format", None)
    if not isinstance(fmt, str) or fmt not in ExportFormat.values:
        raise ValidationError(
            {"format": [f"One of {', '.join(ExportFormat.values)}."]},
        )
    try:
        with transaction.atomic():
            job = create_export_job(
                project=project, format=fmt, requested_by=request.user, options=options
            )
            transaction.on_commit(lambda: send_export(job.pk))
    except ExportError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    url = request.build_absolute_uri(reverse("api:export_detail", args=[job.pk]))
    return Response(
        {"id": job.pk, "status": job.status, "url": url},
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": url},
    )


def _get_export(request, pk: int) -> ExportJob:
    return get_object_or_404(
        ExportJob.objects.select_related("project").filter(project__in=_visible(request)), pk=pk
    )


@extend_schema(responses={200: s.ExportJobSerializer, **ERRORS}, summary="An export's status")
@api_view(["GET"])
def export_detail(request, pk: int):
    job = _get_export(request, pk)
    return Response(s.ExportJobSerializer(job, context={"request": request}).data)


@extend_schema(
    responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **ERRORS},
    summary="Download a finished export (streamed)",
)
@api_view(["GET"])
def export_download(request, pk: int):
    job = _get_export(request, pk)
    if job.status != "succeeded" or not job.file:
        raise NotFound("This export has no file (yet).")
    return FileResponse(job.file.open("rb"), as_attachment=True, filename=Path(job.file.name).name)


# --- metrics --------------------------------------------------------------------------------


@extend_schema(
    responses={200: s.MetricsSerializer, **ERRORS}, summary="The latest metrics snapshot"
)
@api_view(["GET"])
def metrics(request, slug: str):
    project = _get_project(request, slug)
    snapshot = latest_snapshot(project)
    if snapshot is None:
        raise NotFound("No metrics yet: the dashboard's recompute (or beat) makes the first.")
    data = snapshot.data
    return Response(
        {
            "computed_at": snapshot.computed_at,
            "judgment_count": snapshot.judgment_count,
            "agreement": data.get("agreement"),
            "raters": data.get("raters"),
            "leaderboard": data.get("leaderboard"),
        }
    )


# --- webhooks -------------------------------------------------------------------------------


@extend_schema(
    methods=["GET"],
    operation_id="projects_webhooks_list",
    responses={200: s.WebhookSerializer(many=True), **ERRORS},
)
@extend_schema(
    methods=["POST"],
    request=s.WebhookSerializer,
    responses={201: s.WebhookSerializer, **INVALID, **ERRORS},
)
@api_view(["GET", "POST"])
def webhooks(request, slug: str):
    project = _get_project(request, slug)
    if request.method == "POST":
        serializer = s.WebhookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        webhook = create_webhook(
            project=project,
            url=serializer.validated_data["url"],
            events=serializer.validated_data["events"],
            created_by=request.user,
        )
        if serializer.validated_data.get("active") is False:
            Webhook.objects.filter(pk=webhook.pk).update(active=False)
            webhook.active = False
        return Response(s.WebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)
    hooks = Webhook.objects.filter(project=project).order_by("id")
    return Response(s.WebhookSerializer(hooks, many=True).data)


@extend_schema(methods=["GET"], responses={200: s.WebhookSerializer, **ERRORS})
@extend_schema(
    methods=["PATCH"],
    request=s.WebhookSerializer,
    responses={200: s.WebhookSerializer, **INVALID, **ERRORS},
)
@api_view(["GET", "PATCH"])
def webhook_detail(request, slug: str, pk: int):
    # No DELETE, as leads delete nothing in the admin either: `active: false` stops a webhook
    # and keeps its deliveries' log.
    project = _get_project(request, slug)
    webhook = get_object_or_404(Webhook.objects.filter(project=project), pk=pk)
    if request.method == "PATCH":
        serializer = s.WebhookSerializer(webhook, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        webhook = serializer.save()
    return Response(s.WebhookSerializer(webhook).data)


@csrf_exempt  # it changes nothing, and a PATCH without a token must get this 404, not CSRF's page
def not_found(request, *args, **kwargs) -> JsonResponse:
    """Any other /api/ URL: a JSON 404, never the site's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)
