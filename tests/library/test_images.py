"""The image pipeline: what is accepted, what is refused, and what gets stored.

Every file is built here in code: no binary fixtures in the repository.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from PIL import Image, ImageCms, PngImagePlugin

from content_modules.accounts.roles import Role
from content_modules.audit.models import AuditEntry
from content_modules.errors import InvalidInput, PayloadTooLarge, PermissionDenied
from content_modules.library.images import (
    ProcessedImage,
    image_asset_create,
    process_image_upload,
    store_image_asset,
)
from content_modules.library.models import ImageAsset
from tests.factories import make_user
from tests.services import require_postgres

RED = (220, 20, 20)
BLUE = (20, 20, 220)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b"<rdf:Description>secret-xmp-creator</rdf:Description></rdf:RDF></x:xmpmeta>"
)
# Byte patterns that would betray surviving metadata in an encoded file.
METADATA_MARKERS = (
    b"Exif\x00\x00",
    b"secret",
    b"adobe:ns:meta",
    b"http://ns.adobe.com/xap",
    b"tEXt",
    b"zTXt",
    b"iTXt",
    b"eXIf",
    b"iCCP",
    b"ICC_PROFILE",
    b"XMP ",
    b"EXIF",
    b"ICCP",
)
INFO_METADATA_KEYS = {"exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile", "Author"}


# --- Building files ---------------------------------------------------------


def half_and_half(size=(40, 20), mode="RGB") -> Image.Image:
    """Left half red, right half blue: orientation shows in the pixels."""
    w, h = size
    im = Image.new(mode, size, RED if mode == "RGB" else RED + (255,))
    im.paste(BLUE if mode == "RGB" else BLUE + (128,), (w // 2, 0, w, h))
    return im


def noisy(size=(256, 256)) -> Image.Image:
    """Random pixels: compresses badly, so a cut file is missing real image data."""
    rng = random.Random(42)
    return Image.frombytes(
        "RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
    )


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def exif_with_gps(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "secret-camera-maker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 12.0)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 39.0)
    return exif


def icc_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_metadata() -> bytes:
    """A 40x20 JPEG whose EXIF says 'rotate 90° clockwise', with GPS, ICC, a comment and XMP."""
    return encode(
        half_and_half(),
        "JPEG",
        quality=95,
        exif=exif_with_gps(6),
        comment=b"secret-comment",
        xmp=XMP,
        icc_profile=icc_profile(),
    )


def png_with_metadata(mode="RGBA") -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "secret-author")
    info.add_text("Comment", "secret-ztxt " * 20, zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return encode(
        half_and_half(mode=mode),
        "PNG",
        pnginfo=info,
        exif=exif_with_gps(1),
        icc_profile=icc_profile(),
    )


def webp_with_metadata() -> bytes:
    return encode(half_and_half(), "WEBP", quality=90, xmp=XMP, exif=exif_with_gps(1))


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height all-black pixels: a few KB that inflate hugely."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring enormous dimensions, with a token of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + png_chunk(b"IEND", b"")
    )


def assert_has_metadata(data: bytes, *keys: str) -> None:
    """The source file really carries what the pipeline must remove."""
    with Image.open(io.BytesIO(data)) as img:
        assert set(keys) <= set(img.info), img.info.keys()
        assert img.getexif().get_ifd(0x8825)[1] == "N"  # GPS latitude ref


def assert_no_metadata(data: bytes) -> None:
    for marker in METADATA_MARKERS:
        assert marker not in data, f"{marker!r} survived in the stored file"
    with Image.open(io.BytesIO(data)) as img:
        assert not (INFO_METADATA_KEYS & set(img.info)), img.info.keys()
        assert dict(img.getexif()) == {}
        assert getattr(img, "text", {}) == {}


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- Good files -------------------------------------------------------------


def test_jpeg_orientation_is_applied_and_exif_gps_icc_comment_xmp_are_dropped():
    source = jpeg_with_metadata()
    assert_has_metadata(source, "exif", "xmp", "comment", "icc_profile")

    processed = process_image_upload(upload(source))

    assert processed.format == "JPEG"
    # Stored 40x20 landscape with orientation 6: the reader must see 20x40 portrait.
    assert (processed.width, processed.height) == (20, 40)
    with Image.open(io.BytesIO(processed.full)) as img:
        assert img.format == "JPEG"
        assert img.size == (20, 40)
        rgb = img.convert("RGB")
        # Rotated 90° clockwise: the red left half is now the top half.
        top, bottom = rgb.getpixel((10, 5)), rgb.getpixel((10, 35))
    assert top[0] > 150 and top[2] < 100, top
    assert bottom[2] > 150 and bottom[0] < 100, bottom
    for data in (processed.full, processed.web, processed.thumbnail):
        assert_no_metadata(data)
    assert processed.original_name == "photo.jpg"


def test_png_keeps_alpha_and_loses_text_chunks_exif_icc_and_xmp():
    source = png_with_metadata()
    assert_has_metadata(source, "Author", "Comment", "XML:com.adobe.xmp", "exif", "icc_profile")

    processed = process_image_upload(upload(source, "chart.png", "image/png"))

    assert processed.format == "PNG"
    assert (processed.width, processed.height) == (40, 20)
    with Image.open(io.BytesIO(processed.full)) as img:
        assert img.format == "PNG"
        assert img.mode == "RGBA"
        assert img.getpixel((35, 10)) == BLUE + (128,)
    for data in (processed.full, processed.web, processed.thumbnail):
        assert_no_metadata(data)


def test_webp_loses_xmp_and_exif():
    source = webp_with_metadata()
    assert_has_metadata(source, "xmp", "exif")

    processed = process_image_upload(upload(source, "hero.webp", "image/webp"))

    assert processed.format == "WEBP"
    with Image.open(io.BytesIO(processed.full)) as img:
        assert img.format == "WEBP"
        assert img.size == (40, 20)
    for data in (processed.full, processed.web, processed.thumbnail):
        assert_no_metadata(data)


def test_format_is_taken_from_the_content_not_the_name_or_content_type():
    png = encode(half_and_half(), "PNG")
    processed = process_image_upload(upload(png, name="looks-like.jpg", content_type="image/jpeg"))
    assert processed.format == "PNG"
    assert Image.open(io.BytesIO(processed.full)).format == "PNG"


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("CMYK", "JPEG"), ("L", "JPEG"), ("P", "PNG"), ("LA", "PNG"), ("1", "PNG"), ("I;16", "PNG")],
)
def test_unusual_colour_modes_are_converted_to_a_mode_the_format_stores(mode, fmt):
    im = Image.new(mode, (30, 30))
    processed = process_image_upload(upload(encode(im, fmt), "x"))
    with Image.open(io.BytesIO(processed.full)) as img:
        assert img.format == fmt
        assert img.mode in {"RGB", "RGBA", "L", "LA"}
        img.load()


def test_renditions_fit_their_max_side_and_small_images_are_not_enlarged(settings):
    settings.IMAGE_WEB_MAX_SIDE = 100
    settings.IMAGE_THUMB_MAX_SIDE = 24
    processed = process_image_upload(upload(encode(noisy((300, 150)), "JPEG")))

    sizes = {}
    for key in ("full", "web", "thumbnail"):
        with Image.open(io.BytesIO(getattr(processed, key))) as img:
            assert img.format == "JPEG"
            sizes[key] = img.size
    assert sizes == {"full": (300, 150), "web": (100, 50), "thumbnail": (24, 12)}

    small = process_image_upload(upload(encode(half_and_half((20, 10)), "PNG")))
    assert Image.open(io.BytesIO(small.web)).size == (20, 10)


def test_sha256_is_of_the_re_encoded_full_image():
    import hashlib

    processed = process_image_upload(upload(jpeg_with_metadata()))
    assert processed.sha256 == hashlib.sha256(processed.full).hexdigest()


def test_a_plain_file_like_object_without_size_is_accepted():
    data = encode(half_and_half(), "PNG")
    processed = process_image_upload(io.BytesIO(data))
    assert processed.format == "PNG"
    assert processed.original_name == ""


# --- Bad files --------------------------------------------------------------


def test_truncated_jpeg_is_refused():
    data = encode(noisy(), "JPEG", quality=95)
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(data[: len(data) // 2]))
    assert exc.value.field == "image"
    assert exc.value.status_code == 400
    assert "damaged or incomplete" in exc.value.message


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_truncated_png_and_webp_are_refused(fmt):
    data = encode(noisy(), fmt)
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(data[: len(data) // 2], "x"))
    assert exc.value.field == "image"
    assert "damaged or incomplete" in exc.value.message


def test_text_file_named_png_is_refused():
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(b"just some text, not a picture\n", "notes.png", "image/png"))
    assert exc.value.field == "image"
    assert exc.value.message == "The file is not an image; only JPEG, PNG and WebP are accepted."


def test_empty_file_is_refused():
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(b"", "empty.png"))
    assert exc.value.message == "The file is empty."


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")])
def test_formats_not_allowed_are_refused_naming_the_detected_format(fmt, name):
    data = encode(half_and_half(), fmt)
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(data, "innocent.jpg"))
    assert exc.value.field == "image"
    assert exc.value.message == (
        f"The file is a {name} image; only JPEG, PNG and WebP are accepted."
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "The file is a PDF document"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "The file is a HEIC image"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "The file is an AVIF image"),
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
            "The file is an SVG drawing",
        ),
        (b"BMW brochure text, not a bitmap", "The file is not an image"),
    ],
    ids=["pdf", "heic", "avif", "svg", "text-starting-with-BM"],
)
def test_refused_files_are_named_for_the_author(data, message):
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(data, "figure.png"))
    assert exc.value.message == f"{message}; only JPEG, PNG and WebP are accepted."


def test_lossless_webp_stays_lossless_and_lossy_webp_stays_lossy():
    chart = half_and_half((64, 32))
    lossless = process_image_upload(upload(encode(chart, "WEBP", lossless=True), "c.webp"))
    lossy = process_image_upload(upload(encode(chart, "WEBP", quality=80), "p.webp"))

    assert lossless.lossless and not lossy.lossless
    assert b"VP8L" in lossless.full[:64] and b"VP8L" not in lossy.full[:64]
    with Image.open(io.BytesIO(lossless.full)) as img:
        # Lossless: every pixel comes back exactly.
        assert img.convert("RGB").tobytes() == chart.tobytes()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_animated_image_is_stored_as_its_first_frame(fmt):
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(io.BytesIO(data)) as source:
        assert getattr(source, "n_frames", 1) == 2

    processed = process_image_upload(upload(data, "anim"))

    with Image.open(io.BytesIO(processed.full)) as img:
        assert getattr(img, "n_frames", 1) == 1
        r, g, b = img.convert("RGB").getpixel((8, 8))
    assert r > 200 and b < 60


def test_the_client_path_is_stripped_from_the_original_name():
    data = encode(half_and_half(), "PNG")
    processed = process_image_upload(upload(data, "C:\\fakepath\\Q3 chart\x07.png"))
    assert processed.original_name == "Q3 chart.png"


def test_decompression_bomb_over_the_pixel_cap_is_refused_before_decoding():
    # 8000 x 8000 = 64 megapixels (over the 40 MP default) in a file of a few KB.
    data = png_bomb(8000, 8000)
    assert len(data) < 20_000
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(data, "bomb.png"))
    assert exc.value.field == "image"
    assert "8000 × 8000 pixels" in exc.value.message
    assert "the limit is 40 megapixels" in exc.value.message


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is patched to claim other dimensions."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_jpeg_declaring_too_many_pixels_is_refused():
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(jpeg_declaring(7000, 7000)))
    assert "7000 × 7000 pixels (49 megapixels)" in exc.value.message


def test_png_with_a_corrupt_chunk_is_refused():
    data = bytearray(encode(noisy((32, 32)), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 20] ^= 0xFF
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(bytes(data), "x.png"))
    assert "damaged or incomplete" in exc.value.message


def test_pipeline_refuses_to_run_if_truncated_images_were_enabled_globally(monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = encode(noisy(), "JPEG")
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        process_image_upload(upload(data[: len(data) // 2]))


def test_bomb_beyond_pillows_own_limit_is_refused_as_invalid_input():
    # Pillow itself raises DecompressionBombError at open for this one.
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(png_header_only(100_000, 100_000), "bomb.png"))
    assert exc.value.field == "image"
    assert "too many pixels" in exc.value.message


def test_pixel_cap_comes_from_settings(settings):
    settings.IMAGE_MAX_PIXELS = 30 * 30
    with pytest.raises(InvalidInput) as exc:
        process_image_upload(upload(encode(half_and_half((40, 40)), "PNG"), "x.png"))
    assert "40 × 40 pixels" in exc.value.message
    process_image_upload(upload(encode(half_and_half((30, 30)), "PNG"), "x.png"))


def test_file_over_the_size_cap_is_refused_with_413(settings):
    settings.IMAGE_MAX_BYTES = 2_000
    data = encode(noisy((64, 64)), "PNG")
    assert len(data) > 2_000
    with pytest.raises(PayloadTooLarge) as exc:
        process_image_upload(upload(data, "big.png"))
    assert exc.value.status_code == 413
    assert exc.value.field == "image"
    assert "the limit is 2 KB" in exc.value.message


class CountingReader(io.BytesIO):
    """A file-like that remembers how many bytes were read from it."""

    bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_oversize_file_is_refused_before_any_byte_is_read(settings):
    settings.IMAGE_MAX_BYTES = 10 * 1024 * 1024
    big = CountingReader(b"\xff\xd8\xff" + b"\x00" * (11 * 1024 * 1024))
    big.size = 11 * 1024 * 1024 + 3
    with pytest.raises(PayloadTooLarge) as exc:
        process_image_upload(big)
    assert big.bytes_read == 0
    assert exc.value.message == "The image is 11 MB; the limit is 10 MB."


def test_a_size_that_lies_still_cannot_make_us_read_past_the_cap(settings):
    settings.IMAGE_MAX_BYTES = 1_000
    liar = CountingReader(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50_000)
    liar.size = 10
    with pytest.raises(PayloadTooLarge):
        process_image_upload(liar)
    assert liar.bytes_read == 1_001


# --- Storing ----------------------------------------------------------------


def stored_paths(settings, asset: ImageAsset) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [root / asset.image.name, root / asset.web.name, root / asset.thumbnail.name]


def test_commit_writes_three_clean_files_and_one_row(
    settings, author, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        asset = image_asset_create(actor=author, upload=upload(jpeg_with_metadata()))

    asset = ImageAsset.objects.get(pk=asset.pk)
    assert (asset.format, asset.width, asset.height) == ("JPEG", 20, 40)
    assert asset.uploaded_by == author
    assert asset.original_name == "photo.jpg"
    assert asset.image.name == f"images/full/{asset.sha256}.jpg"
    paths = stored_paths(settings, asset)
    assert media_files(settings) == sorted(paths)
    for path in paths:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "JPEG"
        assert_no_metadata(data)
    entry = AuditEntry.objects.get(action="image.uploaded")
    assert entry.object_id == str(asset.pk)
    assert entry.data["sha256"] == asset.sha256


def test_rollback_of_the_callers_transaction_leaves_no_file_and_no_row(
    settings, author, django_capture_on_commit_callbacks
):
    processed = process_image_upload(upload(jpeg_with_metadata()))

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        store_image_asset(actor=author, processed=processed)
        raise RuntimeError("the module save failed after the image was stored")

    assert callbacks == []
    assert not ImageAsset.objects.exists()
    assert not AuditEntry.objects.filter(action="image.uploaded").exists()
    assert media_files(settings) == []


@pytest.mark.django_db(transaction=True)
def test_real_commit_and_real_rollback_against_the_database(settings):
    author = make_user(Role.AUTHOR)
    processed = process_image_upload(upload(webp_with_metadata(), "hero.webp"))

    with pytest.raises(RuntimeError), transaction.atomic():
        store_image_asset(actor=author, processed=processed)
        raise RuntimeError("rolled back")
    assert not ImageAsset.objects.exists()
    assert media_files(settings) == []

    with transaction.atomic():
        asset = store_image_asset(actor=author, processed=processed)
        # Nothing is on disk until the transaction commits.
        assert media_files(settings) == []
    assert ImageAsset.objects.filter(pk=asset.pk).exists()
    for path in stored_paths(settings, asset):
        with Image.open(path) as img:
            assert img.format == "WEBP"


def test_the_same_image_twice_makes_two_rows_sharing_one_set_of_files(
    settings, author, django_capture_on_commit_callbacks
):
    data = png_with_metadata()
    with django_capture_on_commit_callbacks(execute=True):
        first = image_asset_create(actor=author, upload=upload(data, "a.png"))
    with django_capture_on_commit_callbacks(execute=True):
        second = image_asset_create(actor=author, upload=upload(data, "b.png"))

    assert first.pk != second.pk
    assert first.image.name == second.image.name
    assert len(media_files(settings)) == 3


def test_a_partial_file_left_by_a_crash_is_replaced(
    settings, author, django_capture_on_commit_callbacks
):
    processed = process_image_upload(upload(jpeg_with_metadata()))
    partial = Path(settings.MEDIA_ROOT) / "images/full" / f"{processed.sha256}.jpg"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(processed.full[:100])

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        store_image_asset(actor=author, processed=processed)

    assert partial.read_bytes() == processed.full
    assert len(media_files(settings)) == 3


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"plain text", InvalidInput),
        (png_header_only(9000, 9000), InvalidInput),
    ],
)
def test_a_refused_upload_stores_no_file_and_no_row(
    settings, author, django_capture_on_commit_callbacks, data, error
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(error):
        image_asset_create(actor=author, upload=upload(data, "x.png"))
    assert not ImageAsset.objects.exists()
    assert media_files(settings) == []


def test_an_oversize_upload_stores_no_file_and_no_row(
    settings, author, django_capture_on_commit_callbacks
):
    settings.IMAGE_MAX_BYTES = 100
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PayloadTooLarge):
        image_asset_create(actor=author, upload=upload(jpeg_with_metadata()))
    assert not ImageAsset.objects.exists()
    assert media_files(settings) == []


def test_only_authors_and_admins_upload_images(
    medical, admin_user, django_capture_on_commit_callbacks
):
    with pytest.raises(PermissionDenied):
        image_asset_create(actor=medical, upload=upload(jpeg_with_metadata()))
    assert not ImageAsset.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        asset = image_asset_create(actor=admin_user, upload=upload(jpeg_with_metadata()))
    assert asset.uploaded_by == admin_user


def test_processed_image_is_a_plain_dataclass():
    processed = ProcessedImage(
        format="PNG", width=1, height=1, sha256="0" * 64, full=b"", web=b"", thumbnail=b""
    )
    assert processed.original_name == ""
    assert processed.extension == "png"


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_one_image_make_one_row_each_and_one_set_of_intact_files(settings):
    import threading

    from django.db import connections

    # SQLite's in-memory test database locks whole tables across threads.
    require_postgres()
    author = make_user(Role.AUTHOR)
    data = png_with_metadata()
    expected = process_image_upload(upload(data, "same.png"))
    barrier = threading.Barrier(4)
    assets, errors = [], []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            assets.append(image_asset_create(actor=author, upload=upload(data, "same.png")))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert ImageAsset.objects.filter(sha256=expected.sha256).count() == 4
    files = media_files(settings)
    assert len(files) == 3
    by_folder = {path.parent.name: path.read_bytes() for path in files}
    assert by_folder == {
        "full": expected.full,
        "web": expected.web,
        "thumb": expected.thumbnail,
    }
