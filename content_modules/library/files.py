"""Uploaded files: reference PDFs checked and named by the server, and who may fetch what.

Uploads are never served from an open media folder. A reference PDF is
stored as ``references/<sha256>.pdf`` only after a structural PDF check (its
client name, extension and content type are ignored), images as
``images/<rendition>/<sha256>.<jpg|png|webp>`` after Pillow decoded them
(images.py). Both are served only through views that ask ``may_fetch_image``
or ``may_fetch_reference_pdf``, with the content type of the stored format,
``X-Content-Type-Options: nosniff``, and PDFs as attachments, so no upload
can run as a page of this site whatever bytes it holds.
"""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.http import FileResponse, Http404

from content_modules.accounts.roles import Role, can_see_unapproved, has_role
from content_modules.errors import InvalidInput, PayloadTooLarge

from .models import ImageAsset, ModuleVersion, Reference

PDF_FIELD = "pdf"
# A PDF starts with its version header (ISO 32000: 1.0-1.7 and 2.0).
_PDF_HEADER = re.compile(rb"%PDF-(?:1\.[0-7]|2\.0)\s")
# It ends with "startxref <offset> %%EOF" (in the last kilobyte, ISO 32000 7.5.5).
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF")
_XREF_STREAM = re.compile(rb"\d+\s+\d+\s+obj\s*<<")
_ROOT = re.compile(rb"/Root\s+\d+\s+\d+\s+R")
IMAGE_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def _not_a_pdf(why: str) -> InvalidInput:
    return InvalidInput(f"Not a PDF file: {why}.", field=PDF_FIELD)


def check_pdf(data: bytes) -> None:
    """Raise InvalidInput unless ``data`` has the structure of a PDF file.

    Checked without parsing objects (no PDF library runs on untrusted bytes):
    the version header at byte 0, a ``startxref`` offset before the final
    ``%%EOF`` that lands on a cross-reference table or stream inside the
    file, and a trailer naming the document catalogue (``/Root``). A file
    that merely starts ``%PDF-`` (an HTML or SVG page behind five bytes) fails.
    """
    if not _PDF_HEADER.match(data[:16]):
        raise _not_a_pdf("its content does not start with a %PDF- version header")
    tail_start = max(0, len(data) - 1024)
    pointers = list(_STARTXREF.finditer(data, tail_start))
    if not pointers:
        raise _not_a_pdf("it does not end with a cross-reference pointer and %%EOF")
    offset = int(pointers[-1].group(1))
    if offset >= len(data):
        raise _not_a_pdf("its cross-reference pointer lies outside the file")
    # Tolerate the whitespace some writers leave before the section.
    section = data[offset : offset + 64].lstrip()
    if not (section.startswith(b"xref") or _XREF_STREAM.match(section)):
        raise _not_a_pdf("its cross-reference pointer does not lead to a cross-reference section")
    if not _ROOT.search(data, offset):
        raise _not_a_pdf("its trailer names no document catalogue (/Root)")


def read_reference_pdf(upload) -> bytes:
    """The bytes of an uploaded reference PDF; 413 or 400 (naming ``pdf``) unless a real PDF."""
    limit = settings.REFERENCE_PDF_MAX_BYTES
    size = getattr(upload, "size", None)
    if isinstance(size, int) and size > limit:
        raise PayloadTooLarge(f"The PDF is {size} bytes; the limit is {limit} bytes.", field="pdf")
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The PDF is over the limit of {limit} bytes.", field=PDF_FIELD)
    if not data:
        raise InvalidInput("The PDF file is empty.", field=PDF_FIELD)
    check_pdf(data)
    return data


def reference_pdf_name(data: bytes) -> str:
    """The storage name of a checked PDF: its sha256, and .pdf whatever the client called it."""
    return f"references/{hashlib.sha256(data).hexdigest()}.pdf"


def may_fetch_image(user, asset: ImageAsset) -> bool:
    """People who see unapproved content fetch any image; readers of approved content
    (the engine) only an image of a version approved now."""
    if can_see_unapproved(user):
        return True
    if not has_role(user, Role.ENGINE):
        return False
    return ModuleVersion.objects.approved_now().filter(image=asset).exists()


def may_fetch_reference_pdf(user, reference: Reference) -> bool:
    """References are working material of authors and reviewers, not delivered content."""
    return can_see_unapproved(user)


def _protect(response: FileResponse) -> FileResponse:
    # Also set by SecurityMiddleware; set here too so no configuration can drop it.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def image_response(asset: ImageAsset, field: str) -> FileResponse:
    """One stored rendition of an image, with the content type of its decoded format."""
    stored = getattr(asset, field)
    if not stored or not stored.storage.exists(stored.name):
        raise Http404("The image file is missing.")
    response = FileResponse(
        stored.open("rb"), content_type=IMAGE_CONTENT_TYPES.get(asset.format, "image/jpeg")
    )
    # Assets never change (a new upload is a new asset), so browsers may keep them.
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return _protect(response)


def reference_pdf_response(reference: Reference, *, inline: bool = False) -> FileResponse:
    """A reference's PDF, whatever name it was stored under: a download, or ``inline`` for
    the viewer page's frame.

    The inline variant keeps nosniff and the sandbox CSP (no script of the PDF runs with
    this site's origin) and may be framed by this site's own pages only.
    """
    if not reference.pdf or not reference.pdf.storage.exists(reference.pdf.name):
        raise Http404("This reference has no PDF.")
    response = FileResponse(
        reference.pdf.open("rb"),
        content_type="application/pdf",
        as_attachment=not inline,
        filename=f"reference-{reference.pk}.pdf",
    )
    response["Cache-Control"] = "private, no-store"
    _protect(response)
    if inline:
        response["Content-Security-Policy"] = "default-src 'none'; sandbox; frame-ancestors 'self'"
        response["X-Frame-Options"] = "SAMEORIGIN"
    return response
