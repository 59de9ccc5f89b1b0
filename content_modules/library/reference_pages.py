"""Reference library pages: search and add references, view a PDF, link claims to references.

Views parse the request, call the actions in ``services.py`` and ``claims.py`` and
render; the rules (who may, what is valid) live in those actions, shared with the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from content_modules.accounts.roles import Role, has_role
from content_modules.errors import DomainError

from . import claims, files, services
from .forms import ClaimLinkForm, ReferenceForm
from .models import ClaimLink, Module, ModuleVersion, Reference
from .views import forbidden, library_page

PAGE_SIZE = 25


def may_add_reference(user) -> bool:
    """The same rule as ``reference_create``: authors, medical reviewers and admins."""
    return services.can_author(user) or has_role(user, Role.MEDICAL)


def _attach_module(request: HttpRequest) -> Module | None:
    """The module whose edit page sent the author here (``?module=<id>``), if they may edit it."""
    raw = request.POST.get("module") or request.GET.get("module") or ""
    if not raw.isdigit() or len(raw) > 18:
        return None
    module = Module.objects.filter(pk=int(raw)).first()
    if module is None or not services.can_edit_module(request.user, module):
        return None
    return module


@require_http_methods(["GET", "POST"])
@library_page
def reference_list(request: HttpRequest) -> HttpResponse:
    """The reference library: search by citation, DOI or URL, and add a reference."""
    can_add = may_add_reference(request.user)
    module = _attach_module(request)
    bound = request.method == "POST"
    if bound and not can_add:
        return forbidden(request, "Only authors and medical reviewers add references.")
    form = ReferenceForm(request.POST if bound else None, request.FILES if bound else None)
    status = 200
    if bound:
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    reference = services.reference_create(
                        actor=request.user,
                        citation=data["citation"],
                        doi=data["doi"],
                        url=data["url"],
                        pdf=data.get("pdf"),
                    )
            except DomainError as exc:
                form.add_domain_error(exc)
                status = exc.status_code
            else:
                messages.success(request, f"Reference “{reference}” added to the library.")
                if module is not None:
                    edit = reverse("library:module_edit", args=[module.pk])
                    return redirect(f"{edit}?attach={reference.pk}#field-references")
                return redirect("library:reference_detail", pk=reference.pk)
        else:
            status = 400
    query = request.GET.get("q", "").strip()[:200]
    references = (
        Reference.objects.select_related("created_by")
        .annotate(n_versions=Count("versions", distinct=True))
        .order_by("-created_at", "-id")
    )
    if query:
        references = references.filter(
            Q(citation__icontains=query) | Q(doi__icontains=query) | Q(url__icontains=query)
        )
    page = Paginator(references, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "nav": "references",
        "page": page,
        "q": query,
        "form": form if can_add else None,
        "attach_module": module,
    }
    return render(request, "library/reference_list.html", context, status=status)


@require_safe
@library_page
def reference_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One reference: its citation, DOI and URL, its PDF in a viewer, the claims linked to it."""
    reference = get_object_or_404(Reference.objects.select_related("created_by"), pk=pk)
    links = (
        ClaimLink.objects.filter(reference=reference)
        .select_related("version__module")
        .order_by("-version__module_id", "-version__number", "field", "start")[:50]
    )
    versions = (
        ModuleVersion.objects.filter(references=reference)
        .select_related("module")
        .order_by("-module_id", "-number")[:50]
    )
    context = {
        "nav": "references",
        "reference": reference,
        "links": list(links),
        "versions": list(versions),
    }
    return render(request, "library/reference_detail.html", context)


@require_safe
@library_page
def reference_pdf_inline(request: HttpRequest, pk: int) -> FileResponse:
    """The PDF for the viewer page's frame: inline, sandboxed, framable by this site only."""
    reference = get_object_or_404(Reference, pk=pk)
    if not files.may_fetch_reference_pdf(request.user, reference):
        raise Http404("No such reference.")
    return files.reference_pdf_response(reference, inline=True)


# --- claim links ----------------------------------------------------------------------------


def _back(request: HttpRequest, version: ModuleVersion) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("library:module_edit", args=[version.module_id])


def _refused(
    request: HttpRequest, version: ModuleVersion, errors: list[tuple[str, str]], status: int
) -> HttpResponse:
    context: dict[str, Any] = {
        "nav": "library",
        "version": version,
        "errors": errors,
        "back": _back(request, version),
    }
    return render(request, "library/claim_link_error.html", context, status=status)


@require_POST
@library_page
def claim_link_create_view(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """Link the claim selected on the edit or review page to a reference of the version."""
    version = get_object_or_404(
        ModuleVersion.objects.select_related("module"), module_id=pk, number=number
    )
    form = ClaimLinkForm(request.POST)
    if not form.is_valid():
        errors = [(name, str(message)) for name, items in form.errors.items() for message in items]
        return _refused(request, version, errors, 400)
    data = form.cleaned_data
    reference = Reference.objects.filter(pk=data["reference"]).first()
    if reference is None:
        return _refused(request, version, [("reference", "No such reference.")], 400)
    try:
        link = claims.claim_link_create(
            actor=request.user,
            version=version,
            field=data["field"],
            start=data["start"],
            end=data["end"],
            reference=reference,
            locator=data["locator"],
            quote=data["quote"],
        )
    except DomainError as exc:
        return _refused(request, version, [(exc.field or "", exc.message)], exc.status_code)
    messages.success(request, f"Linked “{link.quoted_text[:80]}” to “{reference.citation[:80]}”.")
    return redirect(f"{_back(request, version)}#claims-panel")


@require_POST
@library_page
def claim_link_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a claim link (while its version can still change)."""
    link = get_object_or_404(ClaimLink.objects.select_related("version__module"), pk=pk)
    version = link.version
    try:
        claims.claim_link_delete(actor=request.user, link=link)
    except DomainError as exc:
        return _refused(request, version, [(exc.field or "", exc.message)], exc.status_code)
    messages.success(request, f"Removed the link of “{link.quoted_text[:80]}”.")
    return redirect(f"{_back(request, version)}#claims-panel")
