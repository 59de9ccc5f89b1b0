"""The project's default JSON parser: DRF's, with a body-size limit and input bounds.

A module of its own, importing no DRF views: DRF resolves its parser
setting while defining ``APIView``, so a parser living beside code that
imports ``rest_framework.views`` (contentapp.api) makes a circular import
whenever that module happens to be the first to load DRF's views.
"""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]

from content_modules import bounds
from content_modules.errors import PayloadTooLarge


class SizeLimitedJSONParser(JSONParser):
    """JSON parser that refuses oversized (413), too deep or unstorable (400) bodies.

    DRF reads JSON from the request stream, which skips Django's own
    DATA_UPLOAD_MAX_MEMORY_SIZE check (that one guards ``request.body`` and
    form parsing only), so without this a client could post any size. Before
    parsing, the raw bytes are scanned for nesting deeper than JSON_MAX_DEPTH
    (the json module recurses per level: RecursionError, a 500, otherwise);
    after it, a body that may hold NUL, a lone surrogate or a non-finite
    number is walked for them (PostgreSQL stores none of these). Errors name
    the field. It is the project's default JSON parser (REST_FRAMEWORK in
    settings).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:
            raise ParseError("JSON parse error - empty body")
        data = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise PayloadTooLarge(
                f"The request body is over the {limit}-byte limit.", field="non_field_errors"
            )
        encoding = get_encoding(parser_context or {})
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        try:
            utf8 = data if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else None
            return bounds.json_loads_bounded(text, raw=utf8)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
