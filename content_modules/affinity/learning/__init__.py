"""The affinity model: features, fit, scoring with explanations, offline evaluation, the gate.

Pure numpy and read-only data loading: no Celery, audit, locks or
transactions. ``score_versions(hcp, versions_or_ids)`` is what the
recommendation endpoint calls; storing, gating and activating models is
``content_modules.affinity.training_runs``.
"""
