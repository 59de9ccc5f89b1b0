"""The project's default JSON parser: DRF's, with Django's body-size limit.

A module of its own, importing no DRF views: DRF resolves its parser
setting while defining ``APIView``, so a parser living beside code that
imports ``rest_framework.views`` (contentapp.api) makes a circular import
whenever that module happens to be the first to load DRF's views.
"""

import io

from django.conf import settings
from rest_framework.parsers import JSONParser

from content_modules.errors import PayloadTooLarge


class SizeLimitedJSONParser(JSONParser):
    """JSON parser that refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE with 413.

    DRF reads JSON from the request stream, which skips Django's own
    DATA_UPLOAD_MAX_MEMORY_SIZE check (that one guards ``request.body`` and
    form parsing only), so without this a client could post any size. It is
    the project's default JSON parser (REST_FRAMEWORK in settings).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and stream is not None:
            data = stream.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(
                    f"The request body is over the {limit}-byte limit.", field="non_field_errors"
                )
            stream = io.BytesIO(data)
        return super().parse(stream, media_type, parser_context)
