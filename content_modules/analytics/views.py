"""The content performance page: engagement by grouping, unused and fatigued content."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from content_modules.affinity.models import HCP
from content_modules.affinity.views import insight_page
from content_modules.library.models import Brand, Channel, Market

from . import services
from .api import ContentQuerySerializer

CHOICES = [
    ("module", "Module"),
    ("message", "Message"),
    ("theme", "Theme"),
    ("tonality", "Tonality"),
    ("format", "Format"),
    ("channel", "Channel"),
    ("segment", "Microsegment"),
    ("week", "Week"),
]
UNUSED_DAYS = 90


def microsegment_choices() -> list[tuple[str, str]]:
    """The active engagement model's segments by label; without one, the keys HCPs carry."""
    labels = services.segment_labels()
    keys = set(labels) | set(
        HCP.objects.exclude(microsegment="").values_list("microsegment", flat=True).distinct()
    )
    return sorted(((k, labels.get(k, k)) for k in keys), key=lambda kv: kv[0])


@require_GET
@insight_page
def content(request: HttpRequest) -> HttpResponse:
    """Rows with rates and intervals for one grouping; unused and fatigued modules."""
    params = {k: v for k, v in request.GET.items() if v and k != "format"}
    params.setdefault("by", "module")
    query = ContentQuerySerializer(data=params)
    context: dict = {
        "choices": CHOICES,
        "brands": Brand.objects.order_by("slug").values_list("slug", "name"),
        "markets": Market.objects.order_by("code").values_list("code", "name"),
        "channels": Channel.objects.order_by("slug").values_list("slug", "label"),
        "microsegments": microsegment_choices(),
        "params": params,
        "unused_days": UNUSED_DAYS,
        "nav": "analytics",
    }
    if not query.is_valid():
        context["errors"] = {k: [str(m) for m in v] for k, v in query.errors.items()}
        return render(request, "analytics/content.html", context, status=400)
    data = query.validated_data
    by = services.SYNONYMS.get(data["by"], data["by"])
    filters = query.filters()
    rows = services.content_performance(
        by=by, since=data["since"], until=data["until"], filters=filters
    )
    top = max((r.click_rate_ci95[1] for r in rows if r.click_rate_ci95), default=0.0) or 1.0
    csv_query = {"by": by, "since": data["since"], "until": data["until"], **filters.as_dict()}
    context.update(
        by=by,
        since=data["since"],
        until=data["until"],
        rows=rows,
        scale=top,
        csv_query=urlencode(csv_query),
        unused=services.unused_modules(days=UNUSED_DAYS, filters=filters),
        fatigued=services.fatigued_modules(filters=filters),
    )
    return render(request, "analytics/content.html", context)
