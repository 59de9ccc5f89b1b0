"""Template tags of the review pages: highlighted text segments and the module page panel."""

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from content_modules.review import pages
from content_modules.review.forms import RecallForm, WithdrawForm
from content_modules.review.services import may_address

register = template.Library()


@register.simple_tag
def segments(parts) -> str:
    """Render text segments, open annotations wrapped in <mark>, with no added whitespace.

    Whitespace matters: the annotation script measures offsets on the text
    content of the element, which must equal the stored text.
    """
    html = []
    for seg in parts or ():
        if seg.marked:
            html.append(
                format_html(
                    '<mark class="anno" data-annotations="{}" title="Commented">{}</mark>',
                    seg.ids_attr,
                    seg.text,
                )
            )
        else:
            html.append(conditional_escape(seg.text))
    return mark_safe("".join(html))  # noqa: S308 - every part was escaped above


@register.simple_tag
def text_diff(opcodes) -> str:
    """Word-level opcodes as inline <del>/<ins> markup."""
    html = []
    for op in opcodes or ():
        if op["op"] == "equal":
            html.append(conditional_escape(op["old"]))
            continue
        if op["old"]:
            html.append(format_html('<del class="diff-del">{}</del>', op["old"]))
        if op["new"]:
            html.append(format_html('<ins class="diff-ins">{}</ins>', op["new"]))
    return mark_safe("".join(html))  # noqa: S308 - every part was escaped above


@register.inclusion_tag("review/_panel_body.html", takes_context=True)
def review_panel(context):
    """The review panel of a module page: submit, recall, withdraw, round feedback, signatures."""
    request = context["request"]
    data = pages.module_panel(request.user, context["module"], context["version"])
    data.update(
        {
            "request": request,
            "user": request.user,
            "csrf_token": context.get("csrf_token"),
            # A refused form comes back bound, keeping what was typed and its errors.
            "withdraw_form": context.get("withdraw_form") or WithdrawForm(),
            "recall_form": context.get("recall_form") or RecallForm(),
        }
    )
    return data


@register.inclusion_tag("review/_edit_comments_body.html", takes_context=True)
def edit_comments(context):
    """The last round's comments on the module edit page: read, reply, mark addressed."""
    request = context["request"]
    module = context["module"]
    data = pages.author_threads(module, context.get("latest"))
    data.update(
        {
            "module": module,
            "user": request.user,
            "csrf_token": context.get("csrf_token"),
            "may_address": may_address(request.user, module),
        }
    )
    return data
