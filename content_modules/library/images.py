"""The image pipeline: check an upload, re-encode it from pixels, store it safely.

Uploads are untrusted. The format is decided by the file's first bytes (never
its name or content type), the size is capped before anything is read, the
pixel count is capped before anything is decoded, and the stored image is a
brand-new image built from the decoded pixels, so no EXIF, GPS, XMP, ICC
profile, comment or text chunk of the upload can reach a reader.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, ImageFile, ImageOps

from content_modules.audit.actions import AuditAction
from content_modules.audit.services import audit_record
from content_modules.errors import InvalidInput, PayloadTooLarge, PermissionDenied

from .models import ImageAsset

FIELD = "image"
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
JPEG_QUALITY = 85
WEBP_QUALITY = 85
# zlib level 6: charts and screenshots shrink ~3x against level 1; "optimize" (level 9 and
# a filter search) took over a minute on a noisy 4-megapixel PNG for a few percent.
PNG_COMPRESS_LEVEL = 6
# libwebp method 2 encodes a 6-megapixel photo ~3x faster than the default 4, same size.
WEBP_METHOD = 2
ACCEPTED = "only JPEG, PNG and WebP are accepted"


@dataclass
class ProcessedImage:
    """A checked, re-encoded image and its renditions, ready to store."""

    format: str  # "JPEG", "PNG" or "WEBP"
    width: int
    height: int
    sha256: str  # of ``full``
    full: bytes
    web: bytes
    thumbnail: bytes
    original_name: str = ""
    lossless: bool = False  # a lossless WebP source stays lossless

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def sniff_format(head: bytes) -> str | None:
    """The allowed format the leading bytes announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


# Formats we refuse but can name for the author, by their leading bytes.
OTHER_SIGNATURES = (
    (b"%PDF-", "The file is a PDF document"),
    (b"GIF87a", "The file is a GIF image"),
    (b"GIF89a", "The file is a GIF image"),
    (b"II*\x00", "The file is a TIFF image"),
    (b"MM\x00*", "The file is a TIFF image"),
    (b"8BPS", "The file is a PSD image"),
)
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}


def describe_other_format(data: bytes) -> str:
    """Tell the author what the refused file is, as precisely as its bytes allow."""
    for signature, description in OTHER_SIGNATURES:
        if data.startswith(signature):
            return description
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "The file is an AVIF image"
        if brand in HEIF_BRANDS:
            return "The file is a HEIC image"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "The file is an SVG drawing"
    other = _name_other_format(data)
    if other:
        return f"The file is a {other} image"
    return "The file is not an image"


def webp_is_lossless(data: bytes) -> bool:
    """True when the WebP's image chunk is VP8L (lossless), walking the RIFF chunks."""
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if kind in (b"VP8L", b"VP8 ", b"ANMF"):
            return kind == b"VP8L"
        pos += 8 + size + (size & 1)
    return False


def _clean_name(name: str) -> str:
    """The file's own name: no client path (browsers may send C:\\fakepath\\...), no controls."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:255]


def _human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _upload_size(upload) -> int:
    size = getattr(upload, "size", None)
    if isinstance(size, int):
        return size
    # A plain file-like: measure by seeking, which reads nothing.
    upload.seek(0, os.SEEK_END)
    size = upload.tell()
    upload.seek(0)
    return size


def _too_large(size: int, cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The image is {_human_size(size)}; the limit is {_human_size(cap)}.", field=FIELD
    )


def _read_capped(upload) -> bytes:
    """The upload's bytes, refusing anything over IMAGE_MAX_BYTES before reading it."""
    cap = settings.IMAGE_MAX_BYTES
    size = _upload_size(upload)
    if size > cap:
        raise _too_large(size, cap)
    upload.seek(0)
    # The declared size may lie (a plain file-like, a growing file): never read past the cap.
    data = upload.read(cap + 1)
    if len(data) > cap:
        raise _too_large(len(data), cap)
    if not data:
        raise InvalidInput("The file is empty.", field=FIELD)
    return data


def _name_other_format(data: bytes) -> str | None:
    """Pillow's name for a format we refuse, read from the header only (never decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.format
    except Exception:  # noqa: BLE001 - any failure just means "not an image we can name"
        return None


def _open_and_load(data: bytes, fmt: str) -> Image.Image:
    """Decode the image fully, refusing bombs and truncated or damaged files."""
    max_pixels = settings.IMAGE_MAX_PIXELS
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A global someone flipped would let half-images through as "valid".
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False.")
    try:
        # Pillow's own MAX_IMAGE_PIXELS global is left alone. catch_warnings swaps the
        # process-wide filter list, so under threads it is only a second line: the
        # explicit width * height check below is the guard that always holds.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = im.size
            if width <= 0 or height <= 0:
                raise InvalidInput("The image has no pixels.", field=FIELD)
            if width * height > max_pixels:
                raise _bomb(width, height, max_pixels)
            im.load()
            return im
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(
            f"The image declares too many pixels; the limit is {max_pixels / 1e6:g} megapixels.",
            field=FIELD,
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a damaged file
        raise InvalidInput(
            f"The {_label(fmt)} file is damaged or incomplete and could not be read.",
            field=FIELD,
        ) from exc


def _bomb(width: int, height: int, max_pixels: int) -> InvalidInput:
    return InvalidInput(
        f"The image is {width} × {height} pixels ({width * height / 1e6:g} megapixels); "
        f"the limit is {max_pixels / 1e6:g} megapixels.",
        field=FIELD,
    )


def _label(fmt: str) -> str:
    return {"WEBP": "WebP"}.get(fmt, fmt)


def _orient(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation so the pixels stand the way the camera meant."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - unreadable EXIF: keep the pixels as decoded
        return im


def _normalise_mode(im: Image.Image, fmt: str) -> Image.Image:
    """Convert to a mode the output format stores faithfully."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping everything to white.
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
        mode = "L"
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if fmt == "JPEG":
        return im if mode in ("RGB", "L") else im.convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if fmt == "PNG":
        if mode in ("RGB", "RGBA", "L", "LA"):
            return im
        return im.convert("RGBA" if has_alpha else "RGB")
    # WebP stores RGB or RGBA only.
    if mode in ("RGB", "RGBA"):
        return im
    return im.convert("RGBA" if has_alpha else "RGB")


def _fresh_copy(im: Image.Image) -> Image.Image:
    """A new image holding only the pixels: no info, EXIF, ICC, XMP or text travels."""
    fresh = Image.new(im.mode, im.size)
    fresh.paste(im)
    return fresh


def _encode(im: Image.Image, fmt: str, *, lossless: bool = False) -> bytes:
    out = io.BytesIO()
    # Deliberately no exif=, icc_profile=, pnginfo= or xmp= arguments.
    if fmt == "JPEG":
        im.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif fmt == "PNG":
        im.save(out, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif lossless:
        im.save(out, "WEBP", lossless=True, quality=80, method=WEBP_METHOD)
    else:
        im.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    return out.getvalue()


def _fit(im: Image.Image, max_side: int) -> Image.Image:
    """The image scaled down to fit a max_side square (never enlarged), aspect kept."""
    width, height = im.size
    if max(width, height) <= max_side:
        return im
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap: a cheap box reduction first, then LANCZOS; quality is indistinguishable.
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def process_image_upload(upload) -> ProcessedImage:
    """Check an uploaded image and re-encode it without metadata, with its renditions.

    Raises PayloadTooLarge (413) over IMAGE_MAX_BYTES and InvalidInput (400)
    for anything that is not a whole JPEG, PNG or WebP within IMAGE_MAX_PIXELS.
    """
    data = _read_capped(upload)
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise InvalidInput(f"{describe_other_format(data)}; {ACCEPTED}.", field=FIELD)
    lossless = fmt == "WEBP" and webp_is_lossless(data)
    im = _open_and_load(data, fmt)
    # The stored extension and served content type come from the format Pillow
    # decoded (opened with formats=[fmt], so it can only agree with the sniff).
    fmt = im.format or fmt
    try:
        # Animated PNG/WebP: only the first frame is decoded and kept, so what
        # reviewers approve is exactly what is served.
        pixels = _fresh_copy(_normalise_mode(_orient(im), fmt))
    finally:
        im.close()
    del data
    full = _encode(pixels, fmt, lossless=lossless)
    # Renditions are resized from the metadata-free pixels; resize adds no metadata.
    web = _fit(pixels, settings.IMAGE_WEB_MAX_SIDE)
    thumbnail = _fit(web, settings.IMAGE_THUMB_MAX_SIDE)
    return ProcessedImage(
        format=fmt,
        width=pixels.width,
        height=pixels.height,
        sha256=hashlib.sha256(full).hexdigest(),
        full=full,
        web=_encode(web, fmt, lossless=lossless),
        thumbnail=_encode(thumbnail, fmt, lossless=lossless),
        original_name=_clean_name(getattr(upload, "name", "") or ""),
        lossless=lossless,
    )


def storage_names(processed: ProcessedImage) -> dict[str, str]:
    """Storage names for the three files, derived from the content's sha256."""
    stem = f"{processed.sha256}.{processed.extension}"
    return {
        "image": f"images/full/{stem}",
        "web": f"images/web/{stem}",
        "thumbnail": f"images/thumb/{stem}",
    }


def write_file(name: str, data: bytes) -> None:
    """Write one file under exactly ``name``; identical content already there is kept."""
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as existing:
            if existing.read() == data:
                return
        # A partial file from a crashed write: replace it.
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        # A concurrent upload of the same image wrote ``name`` first; ours is a duplicate.
        default_storage.delete(saved)


def store_image_asset(*, actor, processed: ProcessedImage) -> ImageAsset:
    """Create the ImageAsset row now and write its files when the caller's transaction commits.

    Must run inside the caller's ``transaction.atomic()``: a rollback leaves
    neither the row nor any file, because files are only written on commit.
    Names come from the sha256, so the row knows its final names up front.
    """
    names = storage_names(processed)
    # Passing names to the constructor (not assigning afterwards) keeps Django's
    # ImageField from opening a file that does not exist yet to read dimensions.
    asset = ImageAsset.objects.create(
        image=names["image"],
        web=names["web"],
        thumbnail=names["thumbnail"],
        width=processed.width,
        height=processed.height,
        format=processed.format,
        sha256=processed.sha256,
        original_name=processed.original_name,
        uploaded_by=actor,
    )
    audit_record(
        actor=actor,
        action=AuditAction.IMAGE_UPLOADED,
        obj=asset,
        data={
            "sha256": processed.sha256,
            "format": processed.format,
            "width": processed.width,
            "height": processed.height,
            "original_name": processed.original_name,
        },
    )
    files = [
        (names["image"], processed.full),
        (names["web"], processed.web),
        (names["thumbnail"], processed.thumbnail),
    ]

    def write_files() -> None:
        for name, data in files:
            write_file(name, data)

    transaction.on_commit(write_files)
    return asset


def image_asset_create(*, actor, upload) -> ImageAsset:
    """Check, re-encode and store an uploaded image as a new ImageAsset."""
    from .services import can_author  # services may import this module

    if not can_author(actor):
        raise PermissionDenied("Only authors upload images.", field=FIELD)
    processed = process_image_upload(upload)
    with transaction.atomic():
        return store_image_asset(actor=actor, processed=processed)
