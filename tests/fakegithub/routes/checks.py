"""Check runs, validated like the Checks API validates them.

Annotations sent on create and on every update are appended, never
replaced; more than 50 in one request is a 422, as on GitHub. A run is the
App's that created it (the GitHub Actions app's, for a workflow's token): only
that App may update it.
"""

from __future__ import annotations

from typing import Any

from ..core import ApiError, Ctx, Response, invalid, not_found
from ..shapes import annotation_json, check_run_json
from ..state import App, CheckRun, Repo, now
from .base import number, parse_time, resolve_commit, router

STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CONCLUSIONS = (
    "action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out",
)  # fmt: skip
LEVELS = ("notice", "warning", "failure")
MAX_ANNOTATIONS = 50
MAX_TEXT = 65535  # output.summary and output.text, counted in bytes: emoji cost up to 4


def _one_of(value: Any, allowed: tuple[str, ...], name: str) -> None:
    if value is not None and value not in allowed:
        choices = ", ".join(f'"{a}"' for a in allowed)
        raise invalid(f"For 'properties/{name}', \"{value}\" is not one of [{choices}].")


def _missing(name: str) -> ApiError:
    return invalid(f'"{name}" wasn\'t supplied.')


def validate(body: dict[str, Any], creating: bool) -> None:
    """Refuses the whole request before anything changes, as GitHub does."""
    for name in ("name", "head_sha") if creating else ():
        if not isinstance(body.get(name), str) or not body[name]:
            raise _missing(name)
    _one_of(body.get("status"), STATUSES, "status")
    _one_of(body.get("conclusion"), CONCLUSIONS, "conclusion")
    if body.get("status") == "completed" and body.get("conclusion") is None:
        raise _missing("conclusion")
    for name in ("started_at", "completed_at"):
        if body.get(name) is not None:
            parse_time(body[name], name)
    if body.get("output") is not None:
        _validate_output(body["output"])


def _validate_output(output: Any) -> None:
    if not isinstance(output, dict):
        raise invalid("For 'properties/output', it is not an object.")
    for name in ("title", "summary"):
        if not isinstance(output.get(name), str):
            raise _missing(name)
    for name in ("summary", "text"):
        size = len((output.get(name) or "").encode("utf-8"))
        if size > MAX_TEXT:
            raise invalid(f"Only {MAX_TEXT} characters are allowed in '{name}'; {size} were supplied.")
    annotations = output.get("annotations") or []
    if len(annotations) > MAX_ANNOTATIONS:
        raise invalid(f"No more than {MAX_ANNOTATIONS} items are allowed; {len(annotations)} were supplied.")
    for annotation in annotations:
        _validate_annotation(annotation)


def _validate_annotation(annotation: Any) -> None:
    if not isinstance(annotation, dict):
        raise invalid("For 'items', it is not an object.")
    for name in ("path", "start_line", "end_line", "annotation_level", "message"):
        if annotation.get(name) is None:
            raise _missing(name)
    for name in ("start_line", "end_line", "start_column", "end_column"):
        value = annotation.get(name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise invalid(f"For 'properties/{name}', {value!r} is not a positive integer.")
    _one_of(annotation["annotation_level"], LEVELS, "annotation_level")
    has_columns = annotation.get("start_column") is not None or annotation.get("end_column") is not None
    if has_columns and annotation["start_line"] != annotation["end_line"]:
        raise invalid("start_column and end_column may only be set when start_line equals end_line.")


def apply(run: CheckRun, body: dict[str, Any]) -> None:
    if body.get("name"):
        run.name = body["name"]
    for name in ("details_url", "external_id"):
        if name in body:
            setattr(run, name, body[name])
    if body.get("started_at") is not None:
        run.started_at = parse_time(body["started_at"], "started_at")
    if body.get("status") is not None:
        run.status = body["status"]
    if body.get("conclusion") is not None:
        # A conclusion completes the run, whatever the status said.
        run.status, run.conclusion = "completed", body["conclusion"]
    if run.status == "completed" and run.completed_at is None:
        completed = body.get("completed_at")
        run.completed_at = parse_time(completed, "completed_at") if completed else now()
    if body.get("actions") is not None:
        run.actions = body["actions"]
    output = body.get("output")
    if output is not None:
        run.title, run.summary = output["title"], output["summary"]
        run.text = output.get("text", run.text)
        run.annotations.extend(output.get("annotations") or [])


def _calling_app(ctx: Ctx) -> App:
    """The App whose installation token makes the request: only Apps write check runs."""
    if ctx.identity.app_id is None:
        raise ApiError(403, "You must authenticate via a GitHub App.")
    return ctx.state.app_by_id(ctx.identity.app_id)


def _run_or_404(repo: Repo, raw_id: str) -> CheckRun:
    run = repo.check_runs.get(number(raw_id))
    if run is None:
        raise not_found()
    return run


@router.route("POST", "/repos/{owner}/{repo}/check-runs")
def create_check_run(ctx: Ctx, owner: str, repo: str) -> Response:
    found = ctx.repo(owner, repo)
    body = ctx.body()
    validate(body, creating=True)
    app = _calling_app(ctx)
    sha = resolve_commit(found, body["head_sha"])
    if sha is None or sha != body["head_sha"]:
        raise ApiError(422, f"No commit found for SHA: {body['head_sha']}")
    run = CheckRun(
        id=ctx.state.new_id(),
        name=body["name"],
        head_sha=sha,
        suite_id=ctx.state.suite_id(found, sha, app),
        app_id=app.id,
        started_at=now(),
    )
    apply(run, body)
    found.check_runs[run.id] = run
    return Response.json(check_run_json(ctx.urls, ctx.state, found, run), status=201)


@router.route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def get_check_run(ctx: Ctx, owner: str, repo: str, check_run_id: str) -> Response:
    found = ctx.repo(owner, repo)
    return Response.json(check_run_json(ctx.urls, ctx.state, found, _run_or_404(found, check_run_id)))


@router.route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def update_check_run(ctx: Ctx, owner: str, repo: str, check_run_id: str) -> Response:
    found = ctx.repo(owner, repo)
    run = _run_or_404(found, check_run_id)
    if _calling_app(ctx).id != run.app_id:
        raise ApiError(403, f"Invalid app_id `{run.app_id}` - check run can only be modified by the GitHub App "
                            "that created it.")
    body = ctx.body()
    validate(body, creating=False)
    apply(run, body)
    return Response.json(check_run_json(ctx.urls, ctx.state, found, run))


@router.route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations")
def list_annotations(ctx: Ctx, owner: str, repo: str, check_run_id: str) -> Response:
    found = ctx.repo(owner, repo)
    run = _run_or_404(found, check_run_id)
    return ctx.paginate(run.annotations, lambda a: annotation_json(ctx.urls, found, run, a))


@router.route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs")
def list_check_runs_for_ref(ctx: Ctx, owner: str, repo: str, ref: str) -> Response:
    found = ctx.repo(owner, repo)
    sha = resolve_commit(found, ref)
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    name, status, app_id = ctx.request.arg("check_name"), ctx.request.arg("status"), ctx.request.arg("app_id")
    runs = sorted(
        (r for r in found.check_runs.values() if r.head_sha == sha),
        key=lambda r: -r.id,
    )
    if ctx.request.arg("filter", "latest") == "latest":
        runs = _latest_per_name(runs)
    runs = [r for r in runs if name in (None, r.name) and status in (None, r.status)
            and app_id in (None, str(r.app_id))]
    return ctx.paginate(runs, lambda r: check_run_json(ctx.urls, ctx.state, found, r), key="check_runs")


def _latest_per_name(runs_newest_first: list[CheckRun]) -> list[CheckRun]:
    """The newest run of each name in each check suite: another App's run of the same name is listed
    next to ours."""
    seen: set[tuple[int, str]] = set()
    latest = []
    for run in runs_newest_first:
        if (run.suite_id, run.name) not in seen:
            seen.add((run.suite_id, run.name))
            latest.append(run)
    return latest
