"""Template filters that show people a vocabulary's labels instead of its slugs."""

from collections.abc import Mapping

from django import template

register = template.Library()


@register.filter
def label_of(labels: Mapping[str, str] | None, slug: str | None) -> str:
    """``{{ channel_labels|label_of:hcp.preferred_channel }}``: the label, else the slug."""
    if not slug:
        return ""
    return (labels or {}).get(slug, slug)
