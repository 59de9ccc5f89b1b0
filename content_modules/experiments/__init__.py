"""A/B experiments on recommendations and next best actions (arms, holdout, results)."""
