"""The affinity model: features, training, scoring with explanations, offline evaluation.

``score_versions(hcp, versions_or_ids)`` is what the recommendation endpoint
calls; ``affinity_model_train`` and ``affinity_model_evaluate`` are the
actions behind the Celery task, the management commands and the API.
"""
