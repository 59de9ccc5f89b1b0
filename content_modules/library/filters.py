"""Filters for the module library, shared by the API and the browser list."""

import django_filters
from django.db.models import Q, QuerySet

from .models import Channel, Module, Tag, TagKind, VersionStatus


def _tag_filter(kind: str, label: str) -> django_filters.ModelChoiceFilter:
    return django_filters.ModelChoiceFilter(
        field_name=f"latest__{'themes' if kind == TagKind.THEME else kind}",
        queryset=Tag.objects.filter(kind=kind),
        to_field_name="slug",
        label=label,
    )


class ModuleFilter(django_filters.FilterSet):
    """Filter modules by their newest version's state, brand, market, channel, tags and text."""

    status = django_filters.ChoiceFilter(
        field_name="latest__status", choices=VersionStatus.choices, label="Status"
    )
    brand = django_filters.CharFilter(field_name="brand__slug", label="Brand")
    market = django_filters.CharFilter(field_name="market__code", label="Market")
    channel = django_filters.ModelChoiceFilter(
        field_name="latest__channels",
        queryset=Channel.objects.all(),
        to_field_name="slug",
        label="Channel",
    )
    message = _tag_filter(TagKind.MESSAGE, "Message")
    theme = _tag_filter(TagKind.THEME, "Theme")
    tonality = _tag_filter(TagKind.TONALITY, "Tonality")
    format = _tag_filter(TagKind.FORMAT, "Format")
    q = django_filters.CharFilter(method="search", label="Search")
    mine = django_filters.BooleanFilter(method="filter_mine", label="Only mine")

    class Meta:
        model = Module
        fields = ["status", "brand", "market", "channel", "message", "theme", "tonality", "format"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Case-insensitive search over title, headline, body and key message."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(latest__title__icontains=value)
            | Q(latest__headline__icontains=value)
            | Q(latest__body__icontains=value)
            | Q(latest__key_message__icontains=value)
        )

    def filter_mine(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        user = getattr(self.request, "user", None)
        if not value or user is None or not user.is_authenticated:
            return queryset
        return queryset.filter(Q(created_by=user) | Q(versions__editors=user)).distinct()
