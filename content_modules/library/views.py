"""Author pages: the library list, module and version pages, create and edit forms.

Views only parse the request, call the library actions and render; the rules
live in ``services.py`` so the pages and the API behave identically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.views.decorators.http import require_http_methods, require_safe

from content_modules.accounts.roles import can_see_unapproved
from content_modules.errors import Conflict, DomainError

from . import claims, compare, files, quickcheck, services
from .filters import ModuleFilter
from .forms import ModuleForm
from .images import store_image_asset
from .models import (
    Brand,
    Channel,
    ImageAsset,
    Market,
    Module,
    ModuleVersion,
    Reference,
    Tag,
    TagKind,
    VersionStatus,
    embedding_text_of,
)

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
# Other apps add to the pages through these includes, when they exist.
REVIEW_PANEL_TEMPLATE = "review/_module_panel.html"
# The last round's comments, which the authors answer while editing.
EDIT_COMMENTS_TEMPLATE = "review/_edit_comments.html"
SIMILAR_TEMPLATE = "affinity/_similar.html"
IMAGE_RENDITIONS = {"full": "image", "web": "web", "thumbnail": "thumbnail"}


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """A 403 page that says why, inside the normal layout."""
    return render(request, "library/forbidden.html", {"reason": message}, status=403)


def library_page(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Signed-in people who work on content (authors, reviewers, admins); others get 403."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_see_unapproved(request.user):
            return forbidden(
                request, "The content library is for authors, reviewers and administrators."
            )
        return view(request, *args, **kwargs)

    return wrapper


def _template_exists(name: str) -> bool:
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return False
    return True


def _filter_controls(filterset: ModuleFilter) -> list[dict[str, Any]]:
    """The select boxes of the list's filter bar, with the current choice of each."""
    data = filterset.form.data
    tags: dict[str, list[tuple[str, str]]] = {kind: [] for kind in TagKind.values}
    for tag in Tag.objects.filter(active=True).order_by("label"):
        tags[tag.kind].append((tag.slug, tag.label))
    controls = [
        ("status", "Status", [(s.value, s.label) for s in VersionStatus]),
        ("brand", "Brand", [(b.slug, b.name) for b in Brand.objects.all()]),
        ("market", "Market", [(m.code, m.code) for m in Market.objects.all()]),
        ("channel", "Channel", [(c.slug, c.label) for c in Channel.objects.all()]),
        ("message", "Message", tags[TagKind.MESSAGE]),
        ("theme", "Theme", tags[TagKind.THEME]),
        ("tonality", "Tonality", tags[TagKind.TONALITY]),
        ("format", "Format", tags[TagKind.FORMAT]),
    ]
    return [
        {
            "name": name,
            "label": label,
            "options": options,
            "value": data.get(name, ""),
            "errors": filterset.form.errors.get(name, []),
        }
        for name, label, options in controls
    ]


@require_safe
@library_page
def module_list(request: HttpRequest) -> HttpResponse:
    """The library: every module's newest version, filtered, searched and paginated."""
    queryset = (
        Module.objects.filter(latest__isnull=False)
        .select_related(
            "brand", "market", "latest", "latest__message", "latest__tonality", "latest__format"
        )
        .prefetch_related("latest__themes", "latest__channels")
        .order_by("-latest__updated_at", "-id")
    )
    filterset = ModuleFilter(request.GET, queryset=queryset, request=request)
    # An unknown value in one filter is reported and ignored; the others still apply.
    filterset.is_valid()
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    active_filters = any(request.GET.get(name) for name in filterset.form.fields)
    return render(
        request,
        "library/module_list.html",
        {
            "nav": "library",
            "page": page,
            "filters": _filter_controls(filterset),
            "filter_errors": filterset.form.errors,
            "q": request.GET.get("q", ""),
            "mine": bool(filterset.form.cleaned_data.get("mine")),
            "active_filters": active_filters,
        },
    )


def _module_or_404(pk: int) -> Module:
    return get_object_or_404(Module.objects.select_related("brand", "market", "created_by"), pk=pk)


def _version_context(version: ModuleVersion) -> dict[str, Any]:
    return {
        "version": version,
        "themes": list(version.themes.all()),
        "channels": list(version.channels.all()),
        "references": list(version.references.all()),
    }


@require_safe
@library_page
def module_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A module's newest version as the HCP sees it, its approval state, variants and history."""
    return render(request, "library/module_detail.html", module_detail_context(request, pk))


def module_detail_context(request: HttpRequest, pk: int) -> dict[str, Any]:
    """What the module page shows; the review app re-renders it with a form's errors."""
    module = _module_or_404(pk)
    if module.latest_id is None:
        raise Http404("This module has no version.")
    version = ModuleVersion.objects.with_content().get(pk=module.latest_id)
    approved = (
        ModuleVersion.objects.approved_now().filter(module=module).only("id", "number").first()
    )
    history = module.versions.select_related("created_by").order_by("-number")
    root_id = module.variant_root_id()
    variants = (
        Module.objects.filter(Q(pk=root_id) | Q(variant_of_id=root_id))
        .exclude(pk=module.pk)
        .filter(latest__isnull=False)
        .select_related("brand", "market", "latest", "latest__tonality", "latest__format")
        .order_by("id")
    )
    return {
        "nav": "library",
        "module": module,
        **_version_context(version),
        "approved": approved,
        "history": history,
        "compare_default": compare.default_pair(module),
        "variants": variants,
        "can_edit": services.can_edit_module(request.user, module),
        "in_review": version.status == VersionStatus.IN_REVIEW,
        # The author sees what a reviewer would flag before submitting (quickcheck.py).
        **(
            quickcheck.checks_context(version)
            if version.status == VersionStatus.DRAFT
            else {"quick_checks": None}
        ),
        "review_panel_template": (
            REVIEW_PANEL_TEMPLATE if _template_exists(REVIEW_PANEL_TEMPLATE) else None
        ),
    }


@require_safe
@library_page
def version_detail(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """One version of a module, exactly as it was written (and reviewed)."""
    module = _module_or_404(pk)
    version = get_object_or_404(
        ModuleVersion.objects.with_content().select_related("created_by"),
        module=module,
        number=number,
    )
    numbers = list(module.versions.order_by("number").values_list("number", flat=True))
    index = numbers.index(version.number)
    context = {
        "nav": "library",
        "module": module,
        **_version_context(version),
        "editors": list(version.editors.all()),
        "is_latest": version.pk == module.latest_id,
        "previous_number": numbers[index - 1] if index > 0 else None,
        "next_number": numbers[index + 1] if index + 1 < len(numbers) else None,
    }
    return render(request, "library/version_detail.html", context)


@require_safe
@library_page
def version_compare(request: HttpRequest, pk: int) -> HttpResponse:
    """Two versions of a module side by side: every text field, the images as thumbnails."""
    module = _module_or_404(pk)
    query: dict[str, Any] | QueryDict = request.GET
    if "a" not in query and "b" not in query:
        pair = compare.default_pair(module)
        query = {"a": str(pair[0]), "b": str(pair[1])} if pair else {}
    form = compare.CompareForm(query or None, module=module)
    context: dict[str, Any] = {"nav": "library", "module": module, "form": form}
    if not form.is_bound:
        return render(request, "library/version_compare.html", context)
    if not form.is_valid():
        return render(request, "library/version_compare.html", context, status=400)
    versions = {
        v.number: v
        for v in ModuleVersion.objects.with_content()
        .select_related("created_by")
        .filter(module=module, number__in=[form.cleaned_data["a"], form.cleaned_data["b"]])
    }
    a, b = versions[form.cleaned_data["a"]], versions[form.cleaned_data["b"]]
    rows = compare.compare_rows(a, b)
    context.update({"a": a, "b": b, "rows": rows, "changed": [r for r in rows if r.changed]})
    return render(request, "library/version_compare.html", context)


def similar_context(
    *, version: ModuleVersion | None = None, text: str = "", module: Module | None = None
) -> dict[str, Any]:
    """The reuse finder's panel for the form and review pages (from the affinity app).

    Without a version or text the panel is still there, empty: the form's script
    fills it as the author types.
    """
    if not _template_exists(SIMILAR_TEMPLATE):
        return {}
    try:
        from content_modules.affinity.reuse import reuse_context
    except ImportError:
        return {}
    panel: dict[str, Any] = {"similar_template": SIMILAR_TEMPLATE}
    if version is None and not text.strip():
        return panel
    try:
        if version is not None:
            found = reuse_context(version=version)
        else:
            found = reuse_context(
                text,
                brand=module.brand if module else None,
                exclude_module_id=module.pk if module else None,
            )
    except Exception:  # A hint panel must never stop an author from saving their work.
        logger.exception("similar-module lookup failed (version %s)", getattr(version, "pk", None))
        return panel
    return {**panel, **found}


def _typed_text(form: ModuleForm) -> str:
    """The module text as the author typed it (the reuse finder reads the same fields)."""
    data = form.data
    return embedding_text_of(
        *(str(data.get(name, "")) for name in ("headline", "body", "key_message", "call_to_action"))
    )


def _form_status(form: ModuleForm) -> int:
    if not form.errors:
        return 200
    return 413 if form.image_too_large else 400


def _store_image(actor, form: ModuleForm):
    if form.processed_image is None:
        return None
    return store_image_asset(actor=actor, processed=form.processed_image)


@require_http_methods(["GET", "POST"])
@library_page
def module_create(request: HttpRequest) -> HttpResponse:
    """The form that creates a module and its first draft version."""
    if not services.can_author(request.user):
        return forbidden(request, "Only authors and administrators create modules.")
    bound = request.method == "POST"
    form = ModuleForm(request.POST if bound else None, request.FILES if bound else None)
    if bound and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                image = _store_image(request.user, form)
                version = services.module_create(
                    actor=request.user,
                    brand=data["brand"],
                    market=data["market"],
                    content=form.version_content(image=image),
                    variant_of=data.get("variant_of"),
                )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(
                request, f"Module “{version.title}” created as a draft (version {version.number})."
            )
            return redirect("library:module_detail", pk=version.module_id)
    context = {"nav": "create", "form": form, "module": None}
    if form.is_bound:
        # The author has written a claim: show approved ones close to it before they retry.
        context.update(similar_context(text=_typed_text(form)))
    else:
        context.update(similar_context())
    return render(request, "library/module_form.html", context, status=_form_status(form))


def _edit_notice(latest: ModuleVersion, approved: ModuleVersion | None) -> str:
    """What saving the edit form will do, when it is more than changing a draft."""
    serving = ""
    if latest.status == VersionStatus.DRAFT:
        if approved is None:
            return ""
        return (
            f"You are editing draft version {latest.number}. Version {approved.number} "
            "stays approved and keeps serving until this draft is approved."
        )
    next_number = latest.number + 1
    if latest.status == VersionStatus.APPROVED:
        return (
            f"Version {latest.number} is approved. Saving creates version {next_number} as a "
            f"draft; version {latest.number} keeps serving until version {next_number} is "
            "approved."
        )
    if approved is not None:
        serving = (
            f" Version {approved.number} stays approved and keeps serving until version "
            f"{next_number} is approved."
        )
    return (
        f"Version {latest.number} ({latest.get_status_display().lower()}) cannot change. "
        f"Saving creates version {next_number} as a draft.{serving}"
    )


@require_http_methods(["GET", "POST"])
@library_page
def module_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The form that edits a module's draft, or starts its next draft version."""
    module = _module_or_404(pk)
    if not services.can_edit_module(request.user, module):
        return forbidden(
            request,
            "Only the module's authors and administrators edit it. You can still view it.",
        )
    latest = ModuleVersion.objects.with_content().get(pk=module.latest_id)
    if latest.status == VersionStatus.IN_REVIEW:
        messages.warning(
            request,
            f"Version {latest.number} is in review, so it cannot be edited until the review "
            "ends. Nothing was changed.",
        )
        return redirect("library:module_detail", pk=module.pk)
    approved = ModuleVersion.objects.approved_now().filter(module=module).first()
    bound = request.method == "POST"
    initial = ModuleForm.initial_from(latest)
    attach = request.GET.get("attach", "")
    if not bound and attach.isdigit() and len(attach) < 19:
        # Back from the reference library: the new reference is ticked, ready to save.
        if Reference.objects.filter(pk=int(attach)).exists():
            initial["references"] = [*initial.get("references", []), int(attach)]
    form = ModuleForm(
        request.POST if bound else None,
        request.FILES if bound else None,
        module=module,
        initial=initial,
    )
    if bound and form.is_valid():
        if not form.changes_from(latest) and form.processed_image is None:
            messages.info(request, "Nothing changed, so nothing was saved.")
            return redirect("library:module_detail", pk=module.pk)
        try:
            with transaction.atomic():
                image = _store_image(request.user, form)
                version = services.module_edit(
                    actor=request.user, module=module, changes=form.changes_from(latest, image)
                )
        except Conflict as exc:
            # The version went into review while the author was typing.
            messages.error(request, f"{exc.message} Nothing was changed.")
            return redirect("library:module_detail", pk=module.pk)
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            if version.number == latest.number:
                text = f"Draft version {version.number} saved."
            else:
                text = f"Saved as draft version {version.number}."
                if approved is not None:
                    text += (
                        f" Version {approved.number} stays approved and keeps serving until "
                        f"version {version.number} is approved."
                    )
            messages.success(request, text)
            return redirect("library:module_detail", pk=module.pk)
    context = {
        "nav": "library",
        "form": form,
        "module": module,
        "latest": latest,
        "notice": _edit_notice(latest, approved),
        "edit_comments_template": (
            EDIT_COMMENTS_TEMPLATE if _template_exists(EDIT_COMMENTS_TEMPLATE) else None
        ),
        **(
            similar_context(text=_typed_text(form), module=module)
            if bound
            else similar_context(version=latest)
        ),
        # Claims of the saved version and their references (links are made on saved text).
        **claims.claims_context(request.user, latest),
    }
    return render(request, "library/module_form.html", context, status=_form_status(form))


@require_safe
@library_page
def image_rendition(request: HttpRequest, pk: int, rendition: str) -> FileResponse:
    """Serve an image asset to people who may see unapproved content.

    Assets of unapproved versions are not public, so they go through this
    view (signed-in, role-checked) rather than an open media folder.
    """
    if rendition not in IMAGE_RENDITIONS:
        raise Http404("Unknown rendition.")
    asset = get_object_or_404(ImageAsset, pk=pk)
    return files.image_response(asset, IMAGE_RENDITIONS[rendition])


@require_safe
@library_page
def reference_pdf(request: HttpRequest, pk: int) -> FileResponse:
    """Serve a reference's PDF, as a download, to the people who check claims against it."""
    return files.reference_pdf_response(get_object_or_404(Reference, pk=pk))
