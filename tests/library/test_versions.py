"""Module versions: creation, editing, and the frozen approved version (invariant 2)."""

import pytest
from django.db import transaction

from content_modules.errors import Conflict
from content_modules.library.models import FrozenVersionError, ModuleVersion, VersionStatus
from content_modules.library.services import module_edit
from tests.factories import force_status, make_module


@pytest.mark.django_db
def test_new_module_starts_as_draft_version_one_with_content_hash(author):
    version = make_module(author, title="Efficacy headline")

    assert version.number == 1
    assert version.status == VersionStatus.DRAFT
    assert len(version.content_hash) == 64
    assert version.content_hash == version.compute_content_hash()
    assert list(version.editors.all()) == [author]


@pytest.mark.django_db
def test_editing_a_draft_changes_it_in_place(author):
    version = make_module(author)
    old_hash = version.content_hash

    edited = module_edit(actor=author, module=version.module, changes={"headline": "New headline"})

    assert edited.pk == version.pk
    assert edited.headline == "New headline"
    assert edited.content_hash != old_hash
    assert ModuleVersion.objects.filter(module=version.module).count() == 1


@pytest.mark.django_db
def test_editing_an_approved_version_creates_next_draft_and_keeps_the_approved_one(author):
    approved = make_module(author, headline="Approved words")
    force_status(approved, VersionStatus.APPROVED)

    draft = module_edit(actor=author, module=approved.module, changes={"headline": "New words"})

    approved.refresh_from_db()
    assert draft.pk != approved.pk
    assert draft.number == 2 and draft.status == VersionStatus.DRAFT
    assert approved.status == VersionStatus.APPROVED
    assert approved.headline == "Approved words"
    assert approved.module.approved_version() == approved


@pytest.mark.django_db
def test_saving_changed_content_on_an_approved_version_is_refused(author):
    version = make_module(author)
    force_status(version, VersionStatus.APPROVED)

    version.body = "Sneaky change"
    with pytest.raises(FrozenVersionError), transaction.atomic():
        version.save()
    with pytest.raises(FrozenVersionError), transaction.atomic():
        version.themes.clear()

    version.refresh_from_db()
    assert version.body != "Sneaky change"


@pytest.mark.django_db
def test_editing_a_version_in_review_is_a_conflict(author):
    version = make_module(author)
    force_status(version, VersionStatus.IN_REVIEW)

    with pytest.raises(Conflict):
        module_edit(actor=author, module=version.module, changes={"headline": "x"})
    version.refresh_from_db()
    assert version.headline != "x"
