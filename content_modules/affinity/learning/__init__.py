"""The affinity model: features, fit, serving with explanations, offline evaluation, the gate.

``serving.score(hcp, version_ids, channel=..., events=...)`` is the model's one
face for callers (the recommendation endpoint, ``scoring``'s pages and API);
``columns.BLOCKS`` is its column table, read by training, the design matrix
and serving. Pure numpy and read-only data loading: no Celery, audit, locks or
transactions; storing, gating and activating models (``affinity_model_train``,
``affinity_model_evaluate``) is ``content_modules.affinity.training_runs``.
"""
