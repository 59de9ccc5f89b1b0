"""The affinity model: features, training, serving with explanations, offline evaluation.

``serving.score(hcp, version_ids, channel=..., events=...)`` is the model's one
face for callers (the recommendation endpoint, ``scoring``'s pages and API);
``columns.BLOCKS`` is its column table, read by training, the design matrix
and serving. ``affinity_model_train`` and ``affinity_model_evaluate`` are the
actions behind the Celery task, the management commands and the API.
"""
