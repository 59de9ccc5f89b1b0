"""Reviewer pages: the queue, a task's review page, module history, the MLR dashboard.

Views parse the request, call the review actions in ``services.py`` and
render; a ``DomainError`` the action raises becomes a message on the page
with the action's status code, so the page and the API refuse alike.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from content_modules.accounts.roles import is_admin, review_roles_of
from content_modules.audit.models import AuditEntry
from content_modules.errors import DomainError, InvalidInput
from content_modules.library.claims import claims_context
from content_modules.library.models import Module, ModuleVersion, VersionStatus
from content_modules.library.quickcheck import checks_context
from content_modules.library.views import module_detail_context, similar_context

from . import pages
from .diff import last_approved_version, previous_version, version_diff
from .exports import audit_csv_lines, dashboard_csv_text, review_record_csv
from .forms import (
    AnnotationForm,
    DashboardFilterForm,
    DecisionForm,
    QueueFilterForm,
    ReassignForm,
    RecallForm,
    ReplyForm,
    WithdrawForm,
)
from .models import Annotation, ReferenceCheck, ReviewTask, TaskStatus
from .policy import RefusalCode, decision_policy
from .queries import (
    DashboardFilters,
    dashboard_metrics,
    module_signatures,
    review_queue,
    review_record,
)
from .services import (
    annotation_address,
    annotation_create,
    annotation_resolve,
    module_withdraw,
    review_recall,
    task_decide,
    task_reassign,
    version_submit,
)
from .trail_views import audit_filters
from .work import progress_by_review

QUEUE_PAGE_SIZE = 50
HISTORY_AUDIT_LIMIT = 500


def forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    """A 403 page inside the layout that says why."""
    return render(request, "review/forbidden.html", {"reason": reason}, status=403)


def _guarded(check: Callable[[Any], bool], reason: str):
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not check(request.user):
                return forbidden(request, reason)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


reviewer_page = _guarded(
    pages.may_review, "The review pages are for medical, legal and regulatory reviewers."
)
content_page = _guarded(
    pages.may_see_history, "Module history is for authors, reviewers and administrators."
)


# --- queue ---------------------------------------------------------------------------------


@require_GET
@reviewer_page
def queue(request: HttpRequest) -> HttpResponse:
    """My queue: open tasks of my roles I may act on, overdue first, with filters."""
    user = request.user
    form = QueueFilterForm(request.GET)
    form.is_valid()  # invalid filters are reported and ignored, the rest still apply
    filters = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
    status = filters.pop("status", "")
    roles = review_roles_of(user)
    if status in ("", TaskStatus.OPEN) and roles:
        tasks = decision_policy.decidable_tasks(user, review_queue(user, filters))
    else:
        tasks = review_queue(user, {**filters, "status": status or TaskStatus.OPEN})
        if not is_admin(user):
            tasks = tasks.filter(role__in=roles)
    tasks = tasks.select_related("review__submitted_by")
    page = Paginator(tasks, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    # Every role's state on each task's round (medical approved, legal pending...): one query.
    progress = progress_by_review(t.review_id for t in page.object_list)
    for task in page.object_list:
        task.overdue_now = task.is_overdue(now)
        task.progress = progress.get(task.review_id, [])
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "review/queue.html",
        {
            "nav": "review",
            "form": form,
            "page": page,
            "status": status,
            "mine": status in ("", TaskStatus.OPEN) and bool(roles),
            "query": query.urlencode(),
            "active_filters": any(request.GET.get(n) for n in form.fields),
            "my_roles": roles,
        },
    )


# --- the review page of a task -------------------------------------------------------------


def _task_or_404(pk: int) -> ReviewTask:
    try:
        return pages.task_for_page(pk)
    except ReviewTask.DoesNotExist:
        raise Http404("No such review task.")


def _task_context(
    request: HttpRequest,
    task: ReviewTask,
    *,
    decision_form: DecisionForm | None = None,
    annotation_form: AnnotationForm | None = None,
    error: DomainError | None = None,
) -> dict[str, Any]:
    user = request.user
    version = (
        ModuleVersion.objects.with_content().select_related("created_by").get(pk=task.version_id)
    )
    references = list(version.references.all())
    previous = previous_version(version)
    last_approved = last_approved_version(version)
    diffs = []
    if last_approved is not None:
        diffs.append(
            {
                "key": "approved",
                "title": f"Against the last approved version ({last_approved.number})",
                "old": last_approved,
                "rows": pages.diff_rows(version_diff(last_approved, version)),
            }
        )
    if previous is not None and (last_approved is None or previous.pk != last_approved.pk):
        diffs.append(
            {
                "key": "previous",
                "title": f"Against the previous version ({previous.number}, "
                f"{previous.get_status_display().lower()})",
                "old": previous,
                "rows": pages.diff_rows(version_diff(previous, version)),
            }
        )
    threads = pages.annotation_threads(version)
    outdated = pages.outdated_threads(previous)
    # The same rule as the queue and the action (policy.py): the form is offered exactly
    # when a signature would be accepted; otherwise the page says why not.
    refusal = decision_policy.refusal(user, task, version=version)
    checked = set(ReferenceCheck.objects.filter(task=task).values_list("reference_id", flat=True))
    if decision_form is None:
        decision_form = DecisionForm(
            references=references,
            initial={"checked_references": [str(i) for i in checked]},
        )
    if decision_form.is_bound:
        chosen = {str(v) for v in cast(QueryDict, decision_form.data).getlist("checked_references")}
    else:
        chosen = {str(i) for i in checked}
    decision = decision_form.data.get("decision", "") if decision_form.is_bound else ""
    return {
        # Reviewers see which approved claims this one resembles: reused claims review faster.
        **similar_context(version=version),
        # Each claim with its reference, and the unreferenced ones flagged (library/claims.py).
        **claims_context(user, version),
        # The pre-review checks the author saw before submitting (library/quickcheck.py).
        **checks_context(version),
        "nav": "review",
        "task": task,
        "review": task.review,
        "version": version,
        "module": version.module,
        "themes": list(version.themes.all()),
        "channels": list(version.channels.all()),
        "references": [
            {"ref": r, "checked": str(r.pk) in chosen, "was_checked": r.pk in checked}
            for r in references
        ],
        "tasks": pages.review_tasks(task.review),
        "signatures": pages.version_signatures(version),
        "diffs": diffs,
        "threads": threads,
        "outdated": outdated,
        "previous": previous,
        "round_outcome": pages.previous_round_outcome(threads, outdated),
        "segments": pages.field_segments(version, threads),
        "can_decide": refusal is None,
        # Why a reviewer of this role may not decide it (closed tasks say so themselves).
        "refusal": (
            refusal
            if refusal is not None
            and refusal.code not in (RefusalCode.CLOSED, RefusalCode.ROLE, RefusalCode.INACTIVE)
            else None
        ),
        "is_medical_task": task.role == "medical",
        "overdue": task.is_overdue(),
        "decision_form": decision_form,
        "annotation_form": annotation_form or AnnotationForm(),
        "statements": {
            d: pages.signature_statement(version, task.role, d) for d in pages.SIGN_VERBS
        },
        "statement": pages.signature_statement(version, task.role, decision),
        "error": error,
        "can_annotate": version.status != VersionStatus.DRAFT,
        "reassign_form": (
            ReassignForm(role=task.role, initial={"assignee": task.assignee_id})
            if is_admin(user) and task.status == TaskStatus.OPEN
            else None
        ),
    }


@require_GET
@reviewer_page
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The review page: previews, references, diff, annotations and the decision form."""
    task = _task_or_404(pk)
    return render(request, "review/task.html", _task_context(request, task))


def _forget_password(form) -> None:
    """Re-render ``form`` without the refused password (everything else stays typed)."""
    data = cast(QueryDict, form.data).copy()
    data["password"] = ""
    form.data = data


def _add_domain_error(form, exc: DomainError) -> None:
    target = exc.field if exc.field in form.fields else None
    form.add_error(target, exc.message)


@require_POST
@reviewer_page
def task_decide_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Sign a decision on a task; errors re-render the page with the reason."""
    task = _task_or_404(pk)
    references = list(ModuleVersion.objects.get(pk=task.version_id).references.all())
    form = DecisionForm(request.POST, references=references)
    status = 400
    error = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            signature = task_decide(
                actor=request.user,
                task=task,
                decision=data["decision"],
                comment=data["comment"],
                password=data["password"],
                checked_reference_ids=[int(i) for i in data["checked_references"]],
                request=request,
            )
        except DomainError as exc:
            _add_domain_error(form, exc)
            status, error = exc.status_code, exc
        else:
            version = ModuleVersion.objects.get(pk=task.version_id)
            text = (
                f"You signed version {version.number} of “{version.title}” as {task.role} "
                f"reviewer. Signature: {signature.manifestation()}."
            )
            if version.status == VersionStatus.APPROVED:
                text += " Every role has approved: the version is approved and now served."
            elif version.status == VersionStatus.IN_REVIEW:
                waiting = ReviewTask.objects.filter(
                    review_id=task.review_id, status=TaskStatus.OPEN
                )
                roles = ", ".join(waiting.order_by("role").values_list("role", flat=True))
                text += (
                    f" The round stays open until {roles or 'every role'} decided; the authors "
                    "then get every role's comments together."
                )
            else:
                outcome = version.get_status_display().lower()
                text += f" Every role has decided: the round closed as {outcome}."
            messages.success(request, text)
            return redirect("review:queue")
    if form.errors.get("password") or (error is not None and error.field == "password"):
        # A refused password is never echoed back; any other refusal keeps what was typed.
        _forget_password(form)
    context = _task_context(request, task, decision_form=form, error=error)
    return render(request, "review/task.html", context, status=status)


@require_POST
@reviewer_page
def annotation_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Comment on a span of text of the task's version, or reply to a thread."""
    task = _task_or_404(pk)
    version = ModuleVersion.objects.get(pk=task.version_id)
    form = AnnotationForm(request.POST)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            annotation = _create_annotation(request.user, version, data)
        except DomainError as exc:
            _add_domain_error(form, exc)
            status = exc.status_code
        else:
            messages.success(request, "Comment added.")
            url = reverse("review:task", args=[task.pk])
            return redirect(f"{url}#annotation-{annotation.parent_id or annotation.pk}")
    context = _task_context(request, task, annotation_form=form)
    return render(request, "review/task.html", context, status=status)


def _create_annotation(user, version: ModuleVersion, data: dict) -> Annotation:
    if data.get("parent"):
        parent = Annotation.objects.filter(pk=data["parent"], version=version).first()
        if parent is None:
            raise InvalidInput("That comment is not on this version.", field="parent")
        return annotation_create(actor=user, version=version, text=data["text"], parent=parent)
    field = data["field"]
    raw = getattr(version, field) or ""
    start, end = pages.browser_offsets_to_raw(raw, data["start"], data["end"])
    quote = data.get("quote") or ""
    if quote and raw[start:end].replace("\r\n", "\n").replace("\r", "\n") != quote:
        raise InvalidInput(
            "The selected text does not match this version; reload the page and select again.",
            field="quote",
        )
    # Selections snap to whole words (the page script does the same, so the reviewer
    # sees the span that is saved); a hand-typed position snaps alike.
    start, end = pages.snap_to_words(raw, start, end)
    return annotation_create(
        actor=user, version=version, field=field, start=start, end=end, text=data["text"]
    )


# --- the authors answer comments (from the module edit page) -------------------------------


def _thread_for_author(pk: int) -> Annotation:
    return get_object_or_404(
        Annotation.objects.select_related("version__module"), pk=pk, parent__isnull=True
    )


def _comment_refused(request: HttpRequest, exc: DomainError) -> HttpResponse:
    context = {"reason": exc.message, "title": "The comment was not changed"}
    return render(request, "review/comment_refused.html", context, status=exc.status_code)


@require_POST
@content_page
def annotation_reply_view(request: HttpRequest, pk: int) -> HttpResponse:
    """An author (or reviewer) replies to a comment thread from the module edit page."""
    thread = _thread_for_author(pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        exc = InvalidInput("Write the reply before sending it.", field="text")
        return _comment_refused(request, exc)
    try:
        annotation_create(
            actor=request.user,
            version=thread.version,
            text=form.cleaned_data["text"],
            parent=thread,
        )
    except DomainError as exc:
        return _comment_refused(request, exc)
    messages.success(request, "Reply added.")
    url = reverse("library:module_edit", args=[thread.version.module_id])
    return redirect(f"{url}#comment-{thread.pk}")


@require_POST
@content_page
def annotation_address_view(request: HttpRequest, pk: int) -> HttpResponse:
    """An author marks a comment thread addressed, or takes the mark back."""
    thread = _thread_for_author(pk)
    addressed = request.POST.get("addressed", "true") != "false"
    try:
        annotation_address(actor=request.user, annotation=thread, addressed=addressed)
    except DomainError as exc:
        return _comment_refused(request, exc)
    messages.success(
        request, "Comment marked addressed." if addressed else "Comment marked not addressed."
    )
    url = reverse("library:module_edit", args=[thread.version.module_id])
    return redirect(f"{url}#comment-{thread.pk}")


@require_POST
@reviewer_page
def annotation_resolve_view(request: HttpRequest, pk: int, annotation_pk: int) -> HttpResponse:
    """Mark a comment thread resolved."""
    task = _task_or_404(pk)
    annotation = get_object_or_404(Annotation, pk=annotation_pk, version_id=task.version_id)
    try:
        annotation_resolve(actor=request.user, annotation=annotation)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Comment resolved.")
    return redirect(f"{reverse('review:task', args=[task.pk])}#annotations")


@require_POST
@reviewer_page
def task_reassign_view(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin assigns an open task to one reviewer of its role (audited by the action)."""
    task = _task_or_404(pk)
    form = ReassignForm(request.POST, role=task.role)
    if not form.is_valid():
        messages.error(request, "Not reassigned: choose a reviewer of this role.")
    else:
        try:
            task = task_reassign(
                actor=request.user, task=task, assignee=form.cleaned_data["assignee"]
            )
        except DomainError as exc:
            messages.error(request, f"Not reassigned: {exc.message}")
        else:
            assignee = task.assignee  # just set by task_reassign
            who = (assignee.get_full_name() or assignee.get_username()) if assignee else "nobody"
            messages.success(request, f"The {task.role} task is now assigned to {who}.")
    return redirect("review:task", pk=pk)


# --- author and withdrawal actions on a module ---------------------------------------------


@require_POST
@content_page
def module_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """The module page's Submit for review button."""
    module = get_object_or_404(Module, pk=pk)
    try:
        review = version_submit(actor=request.user, module=module)
    except DomainError as exc:
        messages.error(request, f"Not submitted: {exc.message}")
    else:
        roles = ", ".join(t.role for t in review.tasks.order_by("role"))
        messages.success(
            request,
            f"Version {review.version.number} submitted for MLR review ({roles}).",
        )
    return redirect("library:module_detail", pk=module.pk)


def _module_page_with_form(request: HttpRequest, module: Module, status: int, **forms):
    """The module page again, with a refused form keeping what was typed and its errors."""
    context = {**module_detail_context(request, module.pk), **forms}
    return render(request, "library/module_detail.html", context, status=status)


@require_POST
@content_page
def module_withdraw_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw the approved version of a module with a signed reason."""
    module = get_object_or_404(Module, pk=pk)
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        return _module_page_with_form(request, module, 400, withdraw_form=form)
    try:
        signature = module_withdraw(
            actor=request.user,
            module=module,
            reason=form.cleaned_data["reason"],
            password=form.cleaned_data["password"],
            request=request,
        )
    except DomainError as exc:
        _add_domain_error(form, exc)
        if exc.field == "password":
            _forget_password(form)
        return _module_page_with_form(request, module, exc.status_code, withdraw_form=form)
    messages.success(
        request,
        f"Version {signature.version.number} withdrawn from delivery "
        f"({signature.manifestation()}).",
    )
    return redirect("library:module_detail", pk=module.pk)


@require_POST
@content_page
def module_recall_view(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin or author closes the open review round early, with a reason."""
    module = get_object_or_404(Module, pk=pk)
    form = RecallForm(request.POST)
    if not form.is_valid():
        return _module_page_with_form(request, module, 400, recall_form=form)
    try:
        review = review_recall(
            actor=request.user, module=module, reason=form.cleaned_data["reason"]
        )
    except DomainError as exc:
        _add_domain_error(form, exc)
        return _module_page_with_form(request, module, exc.status_code, recall_form=form)
    messages.success(
        request,
        f"Review round {review.round} of version {review.version.number} recalled; "
        f"the version is {review.version.get_status_display().lower()} and can be revised.",
    )
    return redirect("library:module_detail", pk=module.pk)


# --- module history and exports ------------------------------------------------------------


@require_GET
@content_page
def module_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Every version, every signature manifestation and the audit entries of a module."""
    module = get_object_or_404(Module.objects.select_related("brand", "market", "latest"), pk=pk)
    versions = list(module.versions.select_related("created_by").order_by("-number"))
    entries = list(
        AuditEntry.objects.filter(module_id=module.pk)
        .select_related("actor")
        .order_by("-seq")[:HISTORY_AUDIT_LIMIT]
    )
    audit_total = AuditEntry.objects.filter(module_id=module.pk).count()
    tasks = (
        ReviewTask.objects.filter(version__module=module)
        .select_related("review", "decided_by", "version")
        .order_by("-review__submitted_at", "role")
    )
    return render(
        request,
        "review/history.html",
        {
            "nav": "library",
            "module": module,
            "title": module.latest.title if module.latest else f"Module {module.pk}",
            "versions": versions,
            "signatures": list(module_signatures(module)),
            "tasks": list(tasks),
            "entries": entries,
            "audit_total": audit_total,
            "audit_limit": HISTORY_AUDIT_LIMIT,
        },
    )


def _bad_filter(form) -> HttpResponse:
    """A 400 naming each refused filter and why (a CSV download has no page to show it on)."""
    problems = "; ".join(
        f"{name}: {' '.join(map(str, errs))}" for name, errs in form.errors.items()
    )
    return HttpResponse(f"Invalid filter ({problems})\n", status=400, content_type="text/plain")


@require_GET
@content_page
def module_audit_csv(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The audit entries of one module as CSV, in chain order."""
    module = get_object_or_404(Module, pk=pk)
    form, filters = audit_filters(request)
    if form.errors:
        return _bad_filter(form)
    response = StreamingHttpResponse(audit_csv_lines(module.pk, filters), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="module-{module.pk}-audit.csv"'
    return response


@require_GET
@content_page
def version_record_csv(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """The review record (every signature manifestation) of one version as CSV."""
    version = get_object_or_404(ModuleVersion, module_id=pk, number=number)
    response = HttpResponse(review_record_csv(review_record(version)), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="module-{pk}-v{number}-review-record.csv"'
    )
    return response


@require_GET
@login_required
def audit_csv(request: HttpRequest) -> HttpResponseBase:
    """The whole audit trail as CSV (admins only)."""
    if not is_admin(request.user):
        return forbidden(request, "The full audit trail export is for administrators.")
    form, filters = audit_filters(request)
    if form.errors:
        return _bad_filter(form)
    response = StreamingHttpResponse(audit_csv_lines(None, filters), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response


# --- MLR dashboard -------------------------------------------------------------------------


def _dashboard_filters(request: HttpRequest) -> tuple[DashboardFilterForm, DashboardFilters]:
    form = DashboardFilterForm(request.GET)
    form.is_valid()  # invalid filters are reported and ignored, the rest still apply
    data = form.cleaned_data
    filters = DashboardFilters(
        brand=data.get("brand") or "",
        market=data.get("market") or "",
        since=data.get("since"),
        until=data.get("until"),
    )
    return form, filters


@require_GET
@reviewer_page
def dashboard(request: HttpRequest) -> HttpResponse:
    """MLR dashboard: cycle time (per week and per role), rounds per approval, first-pass
    approval rate and open tasks by role and age, for a brand, market and date window."""
    form, filters = _dashboard_filters(request)
    metrics = dashboard_metrics(filters=filters)
    rounds = metrics["rounds"]
    query = urlencode(filters.query())
    return render(
        request,
        "review/dashboard.html",
        {
            "nav": "dashboard",
            "form": form,
            "metrics": metrics,
            "csv_url": reverse("review:dashboard_csv") + (f"?{query}" if query else ""),
            "active_filters": bool(filters.query()),
            "cycle": pages.cycle_time_chart(metrics["cycle_time"]),
            "by_role": pages.hbar_chart(
                metrics["cycle_by_role"], key="median_hours", label="label", unit="h"
            ),
            "rounds_chart": pages.hbar_chart(
                [
                    {"label": f"{k} round{'s' if k != '1' else ''}", "count": v}
                    for k, v in rounds["distribution"].items()
                ],
                key="count",
                label="label",
            ),
            "first_pass": pages.first_pass_chart(metrics["first_pass"]),
            "open_chart": pages.open_tasks_chart(metrics["open_tasks"]),
            "open_total": sum(sum(c.values()) for c in metrics["open_tasks"]["by_role"].values()),
            "overdue_total": sum(metrics["open_tasks"]["overdue"].values()),
        },
    )


@require_GET
@reviewer_page
def dashboard_csv(request: HttpRequest) -> HttpResponse:
    """The dashboard's figures, with the same filters, as CSV (one row per figure)."""
    form, filters = _dashboard_filters(request)
    if form.errors:
        return _bad_filter(form)
    body = dashboard_csv_text(dashboard_metrics(filters=filters))
    response = HttpResponse(body, content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="mlr-dashboard.csv"'
    return response
