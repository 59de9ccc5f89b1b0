"""Every action the audit trail records, as one typed enum.

The stored values are the strings written since the trail began, unchanged, so
old rows and the HMAC chain over them still verify. ``audit_record`` refuses an
action that is not a member, so a typo cannot slip into the trail; adding an
action means adding it here.
"""

from __future__ import annotations

from django.db import models


class AuditAction(models.TextChoices):
    # Content (library)
    MODULE_CREATED = "module.created", "Module created"
    VERSION_CREATED = "version.created", "Version created"
    VERSION_EDITED = "version.edited", "Version edited"
    IMAGE_UPLOADED = "image.uploaded", "Image uploaded"
    REFERENCE_CREATED = "reference.created", "Reference created"
    TAG_CREATED = "tag.created", "Tag created"
    CLAIM_LINK_CREATED = "claim_link.created", "Claim linked to a reference"
    CLAIM_LINK_DELETED = "claim_link.deleted", "Claim link removed"
    CLAIM_LINKS_CARRIED_OVER = "claim_links.carried_over", "Claim links carried over"
    # Version life cycle: "version.<status>" for every status a version moves to
    VERSION_SUBMITTED = "version.submitted", "Version submitted"
    VERSION_APPROVED = "version.approved", "Version approved"
    VERSION_CHANGES_REQUESTED = "version.changes_requested", "Version changes requested"
    VERSION_REJECTED = "version.rejected", "Version rejected"
    VERSION_SUPERSEDED = "version.superseded", "Version superseded"
    VERSION_WITHDRAWN = "version.withdrawn", "Version withdrawn"
    VERSION_EXPIRED = "version.expired", "Version expired"
    VERSION_EXPIRY_NOTICE_SENT = "version.expiry_notice_sent", "Expiry notice sent"
    # Review
    TASK_ADDED = "task.added", "Review task added"
    TASK_DECIDED = "task.decided", "Review task decided"
    TASK_CANCELLED = "task.cancelled", "Review task cancelled"
    TASK_REASSIGNED = "task.reassigned", "Review task reassigned"
    TASK_REMINDED = "task.reminded", "Review task reminder sent"
    TASK_REOPENED = "task.reopened", "Review task reopened"
    REVIEW_RECALLED = "review.recalled", "Review round recalled"
    REFERENCE_CHECKED = "reference.checked", "Reference checked"
    SIGNATURE_APPLIED = "signature.applied", "Signature applied"
    SIGNATURE_FAILED = "signature.failed", "Signature failed"
    ANNOTATION_CREATED = "annotation.created", "Annotation created"
    ANNOTATION_RESOLVED = "annotation.resolved", "Annotation resolved"
    ANNOTATION_REPLIED = "annotation.replied", "Reply to a comment"
    ANNOTATION_ADDRESSED = "annotation.addressed", "Comment marked addressed"
    ANNOTATION_REOPENED = "annotation.reopened", "Comment marked not addressed"
    ANNOTATIONS_CARRIED_OVER = "annotations.carried_over", "Annotations carried over"
    # Affinity model
    AFFINITY_TRAINING_REQUESTED = "affinity.training_requested", "Training requested"
    AFFINITY_TRAINING_DEFERRED = "affinity.training_deferred", "Training deferred"
    # Written by earlier code (now training_deferred); kept so old rows stay members.
    AFFINITY_TRAINING_NOT_QUEUED = "affinity.training_not_queued", "Training not queued"
    AFFINITY_MODEL_ACTIVATED = "affinity.model_activated", "Model activated"
    AFFINITY_MODEL_FORCE_ACTIVATED = "affinity.model_force_activated", "Model force-activated"
    AFFINITY_MODEL_REJECTED = "affinity.model_rejected", "Model rejected by the gate"
    # Accounts
    TOKEN_ISSUED = "token.issued", "API token issued"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    # Webhooks
    WEBHOOK_REGISTERED = "webhook.registered", "Webhook registered"
    WEBHOOK_DELETED = "webhook.deleted", "Webhook deleted"
    # Experiments
    EXPERIMENT_STARTED = "experiment.started", "Experiment started"
    EXPERIMENT_STOPPED = "experiment.stopped", "Experiment stopped"
    EXPERIMENT_ARCHIVED = "experiment.archived", "Experiment archived"
    # The Django admin: "admin.<added|changed|deleted>"
    ADMIN_ADDED = "admin.added", "Added in the admin"
    ADMIN_CHANGED = "admin.changed", "Changed in the admin"
    ADMIN_DELETED = "admin.deleted", "Deleted in the admin"
    # The chain itself (migration 0003's marker after the entries written unkeyed)
    AUDIT_CHAIN_KEYED = "audit.chain_keyed", "Audit chain keyed"
