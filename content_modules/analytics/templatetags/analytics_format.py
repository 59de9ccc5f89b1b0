"""Percentages for the content performance page."""

from django import template

register = template.Library()


@register.filter
def pct(value: float | None) -> str:
    """0.1234 as "12.3%"; an empty rate as an en dash."""
    return "–" if value is None else f"{100 * value:.1f}%"
