"""Content performance endpoints (API.md "Content performance"): engagement by grouping,
unused and fatigued modules; JSON, or CSV with ``format=csv`` or the ``.csv`` route."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from content_modules.accounts.permissions import CanSeeLibrary
from content_modules.library.api import FilterFriendlyNegotiation
from content_modules.review.api import CSVRenderer
from contentapp.api import ErrorSerializer

from . import services

DEFAULT_DAYS = 90
MAX_DAYS = 3660
_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="A bad parameter, named in errors."),
    401: OpenApiResponse(ErrorSerializer, description="No valid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="Only authors, reviewers and admins."),
}


class FiltersSerializer(serializers.Serializer):
    brand = serializers.SlugField(required=False, max_length=64, help_text="Brand slug.")
    market = serializers.SlugField(required=False, max_length=16, help_text="Market code.")
    channel = serializers.SlugField(required=False, max_length=32, help_text="Channel slug.")
    microsegment = serializers.CharField(
        required=False, max_length=16, help_text="Only HCPs now in this microsegment (ms-3)."
    )
    format = serializers.ChoiceField(
        choices=["json", "csv"], required=False, default="json", help_text="csv: a CSV file."
    )

    def filters(self) -> services.Filters:
        data = self.validated_data
        return services.Filters(
            brand=data.get("brand", ""),
            market=data.get("market", ""),
            channel=data.get("channel", ""),
            microsegment=data.get("microsegment", ""),
        )


class ContentQuerySerializer(FiltersSerializer):
    by = serializers.ChoiceField(
        choices=[*services.GROUPINGS, *services.SYNONYMS],
        required=False,
        default="module",
        help_text="Grouping (default module); microsegment is a synonym of segment; "
        "week groups by ISO week (key: its Monday).",
    )
    since = serializers.DateField(
        required=False, help_text="First UTC day, inclusive (default: 89 days before until)."
    )
    until = serializers.DateField(
        required=False, help_text="Last UTC day, inclusive (default: today)."
    )

    def validate(self, attrs):
        until = attrs.get("until") or services.today_utc()
        since = attrs.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise serializers.ValidationError({"since": ["since must not be after until."]})
        if (until - since).days >= MAX_DAYS:
            raise serializers.ValidationError(
                {"since": [f"The window may span at most {MAX_DAYS} days."]}
            )
        attrs["since"], attrs["until"] = since, until
        return attrs


class RowSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Module id, tag slug, channel slug, ms-N or a Monday.")
    # DRF's metaclass moves declared fields off the class; the stubs see Field.label.
    label = serializers.CharField(  # type: ignore[assignment]
        help_text="Module title, tag or channel label, week name."
    )
    module = serializers.IntegerField(
        allow_null=True, help_text="With by=module: the module id (its library page)."
    )
    deliveries = serializers.IntegerField()
    opens = serializers.IntegerField()
    clicks = serializers.IntegerField()
    open_rate = serializers.FloatField(allow_null=True, help_text="opens / deliveries.")
    click_rate = serializers.FloatField(allow_null=True, help_text="clicks / deliveries.")
    click_rate_ci95 = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        min_length=2,
        max_length=2,
        help_text="Wilson 95% interval of click_rate; null without deliveries.",
    )


class ContentPerformanceSerializer(serializers.Serializer):
    by = serializers.CharField()
    since = serializers.DateField()
    until = serializers.DateField()
    filters = serializers.DictField(child=serializers.CharField())
    rows = RowSerializer(many=True)


def _csv(body: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def content_csv_name(by: str, since, until) -> str:
    return f"content-performance-{by}-{since:%Y%m%d}-{until:%Y%m%d}.csv"


class _AnalyticsView(APIView):
    permission_classes = [IsAuthenticated, CanSeeLibrary]
    renderer_classes = [JSONRenderer, CSVRenderer]
    # ?format is this endpoint's own parameter, not DRF's renderer override.
    content_negotiation_class = FilterFriendlyNegotiation


class ContentPerformanceView(_AnalyticsView):
    """``GET`` engagement rows for one grouping over a window of UTC days."""

    as_csv = False

    @extend_schema(
        parameters=[ContentQuerySerializer],
        responses={
            200: ContentPerformanceSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            **_ERRORS,
        },
        description="Deliveries, opens and clicks counted from the stored events (exact: "
        "read from daily rollups that database triggers keep), with rates per delivery and "
        "a Wilson 95% interval for the click rate. A version with two themes counts in both "
        "theme rows.",
    )
    def get(self, request: Request) -> Response | HttpResponse:
        query = ContentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        by = services.SYNONYMS.get(data["by"], data["by"])
        rows = services.content_performance(
            by=by, since=data["since"], until=data["until"], filters=query.filters()
        )
        if self.as_csv or data["format"] == "csv":
            name = content_csv_name(by, data["since"], data["until"])
            return _csv(services.rows_csv(rows), name)
        return Response(
            {
                "by": by,
                "since": data["since"],
                "until": data["until"],
                "filters": query.filters().as_dict(),
                "rows": [row.as_dict() for row in rows],
            }
        )


class ContentPerformanceCSVView(ContentPerformanceView):
    """``GET`` the same rows as CSV."""

    as_csv = True

    @extend_schema(
        parameters=[ContentQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        return super().get(request)


class UnusedQuerySerializer(FiltersSerializer):
    days = serializers.IntegerField(
        required=False, default=DEFAULT_DAYS, min_value=1, max_value=MAX_DAYS
    )
    rarely = serializers.IntegerField(
        required=False,
        default=1,
        min_value=1,
        max_value=1_000_000,
        help_text="List modules delivered fewer than this many times (1: never).",
    )


class UnusedModuleSerializer(serializers.Serializer):
    module = serializers.IntegerField()
    title = serializers.CharField()
    brand = serializers.CharField()
    market = serializers.CharField()
    deliveries = serializers.IntegerField(help_text="Deliveries in the window.")
    last_delivered = serializers.DateField(allow_null=True, help_text="Last day ever delivered.")


class UnusedSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateField()
    until = serializers.DateField()
    rarely = serializers.IntegerField()
    results = UnusedModuleSerializer(many=True)


class UnusedView(_AnalyticsView):
    """``GET`` approved modules with no delivery (or fewer than ``rarely``) in the window."""

    @extend_schema(
        parameters=[UnusedQuerySerializer],
        responses={
            200: UnusedSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        query = UnusedQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        until = services.today_utc()
        found = services.unused_modules(
            days=data["days"], rarely=data["rarely"], filters=query.filters(), until=until
        )
        results = [
            {
                "module": u.module_id,
                "title": u.title,
                "brand": u.brand,
                "market": u.market,
                "deliveries": u.deliveries,
                "last_delivered": u.last_delivered,
            }
            for u in found
        ]
        if data["format"] == "csv":
            return _csv(
                services.dicts_csv(results, list(UnusedModuleSerializer().fields)),
                f"unused-{data['days']}d.csv",
            )
        return Response(
            {
                "days": data["days"],
                "since": until - timedelta(days=data["days"] - 1),
                "until": until,
                "rarely": data["rarely"],
                "results": results,
            }
        )


class FatiguedModuleSerializer(serializers.Serializer):
    module = serializers.IntegerField()
    title = serializers.CharField()
    brand = serializers.CharField()
    market = serializers.CharField()
    earlier_deliveries = serializers.IntegerField()
    earlier_click_rate = serializers.FloatField()
    recent_deliveries = serializers.IntegerField()
    recent_click_rate = serializers.FloatField()
    z = serializers.FloatField(help_text="Two-proportion z of recent minus earlier rate.")


class FatiguedSerializer(serializers.Serializer):
    recent_since = serializers.DateField()
    earlier_since = serializers.DateField()
    until = serializers.DateField()
    min_deliveries = serializers.IntegerField()
    results = FatiguedModuleSerializer(many=True)


class FatiguedView(_AnalyticsView):
    """``GET`` approved modules whose click rate in the last 4 weeks fell significantly."""

    @extend_schema(
        parameters=[FiltersSerializer],
        responses={
            200: FatiguedSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            **_ERRORS,
        },
        description="The last 28 days against the 84 before them; flagged when both have "
        "at least 50 deliveries and a two-proportion z-test gives z <= -1.96.",
    )
    def get(self, request: Request) -> Response | HttpResponse:
        query = FiltersSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        until = services.today_utc()
        recent_since = until - timedelta(days=services.FATIGUE_RECENT_DAYS - 1)
        results = [
            {
                "module": f.module_id,
                "title": f.title,
                "brand": f.brand,
                "market": f.market,
                "earlier_deliveries": f.earlier_deliveries,
                "earlier_click_rate": round(f.earlier_rate, 6),
                "recent_deliveries": f.recent_deliveries,
                "recent_click_rate": round(f.recent_rate, 6),
                "z": round(f.z, 3),
            }
            for f in services.fatigued_modules(until=until, filters=query.filters())
        ]
        if query.validated_data["format"] == "csv":
            return _csv(
                services.dicts_csv(results, list(FatiguedModuleSerializer().fields)), "fatigued.csv"
            )
        return Response(
            {
                "recent_since": recent_since,
                "earlier_since": recent_since - timedelta(days=services.FATIGUE_BASELINE_DAYS),
                "until": until,
                "min_deliveries": services.FATIGUE_MIN_DELIVERIES,
                "results": results,
            }
        )
