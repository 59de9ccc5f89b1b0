"""version_diff: field-by-field text (word-level opcodes) and tag differences."""

from hypothesis import given
from hypothesis import strategies as st

from content_modules.library.models import TagKind
from content_modules.library.services import module_edit
from content_modules.review.diff import (
    last_approved_version,
    previous_version,
    text_diff,
    version_diff,
)
from tests.factories import make_module, tag

from .helpers import approve_all, send_back, submit


def test_word_level_opcodes_mark_only_the_changed_words():
    ops = text_diff("Fewer cardiac events in trial A.", "Fewer major cardiac events in trial B.")

    changed = [(o["op"], o["old"], o["new"]) for o in ops if o["op"] != "equal"]
    assert changed == [("insert", "", " major"), ("replace", "A", "B")]


@given(st.text(max_size=60), st.text(max_size=60))
def test_opcodes_rebuild_both_texts_exactly(old, new):
    ops = text_diff(old, new)

    assert "".join(o["old"] for o in ops) == old
    assert "".join(o["new"] for o in ops) == new


def test_diff_of_two_versions_lists_changed_fields_and_tags(author, medical, legal, regulatory):
    v1 = approve_all(
        make_module(author, body="Patients had fewer events."), medical, legal, regulatory
    )
    v2 = module_edit(
        actor=author,
        module=v1.module,
        changes={
            "body": "Adults had fewer events.",
            "tonality": tag(TagKind.TONALITY, "empathetic"),
            "themes": [tag(TagKind.THEME, "outcomes"), tag(TagKind.THEME, "adherence")],
        },
    )

    diff = version_diff(v1, v2)

    assert (diff["old_version"], diff["new_version"]) == (1, 2)
    assert diff["changed"] == ["body", "tonality", "themes"]
    body_ops = [(o["op"], o["old"], o["new"]) for o in diff["fields"]["body"]["opcodes"]]
    assert body_ops == [
        ("replace", "Patients", "Adults"),
        ("equal", " had fewer events.", " had fewer events."),
    ]
    assert diff["fields"]["tonality"] == {
        "kind": "value",
        "changed": True,
        "old": "clinical",
        "new": "empathetic",
    }
    assert diff["fields"]["themes"]["added"] == ["adherence"]
    assert diff["fields"]["themes"]["kept"] == ["outcomes"]
    assert diff["fields"]["themes"]["removed"] == []
    assert diff["fields"]["key_message"]["changed"] is False


def test_diff_against_nothing_shows_everything_as_new(author):
    version = make_module(author)

    diff = version_diff(None, version)

    assert diff["old_version"] is None
    assert diff["fields"]["title"]["opcodes"] == [{"op": "insert", "old": "", "new": version.title}]
    assert diff["fields"]["channels"]["added"] == ["email", "web"]


def test_diff_targets_are_the_previous_and_the_last_approved_version(
    author, medical, legal, regulatory
):
    v1 = approve_all(make_module(author), medical, legal, regulatory)
    v2 = module_edit(actor=author, module=v1.module, changes={"title": "Second"})
    submit(v2)
    send_back(v2, "legal", legal, comment="Again")
    v3 = module_edit(actor=author, module=v1.module, changes={"title": "Third"})

    assert previous_version(v3) == v2
    assert last_approved_version(v3) == v1
    assert last_approved_version(v1) is None
    diff = version_diff(last_approved_version(v3), v3)
    assert diff["changed"] == ["title"]
