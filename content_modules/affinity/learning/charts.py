"""Server-rendered chart geometry for the insight pages (SVG attributes, no inline styles)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BAR_WIDTH = 320  # px of the longest possible bar


def bar_chart(values: dict[str, float], labels: Mapping[str, str] | None = None) -> dict:
    """Bars for one feature's values, sorted by probability, scaled to the largest.

    ``labels`` maps a value's slug to the label people read; a slug without one
    (a retired term, say) is shown with its dashes as spaces.
    """
    labels = labels or {}
    items = sorted(values.items(), key=lambda kv: -kv[1])
    top = max((v for _, v in items), default=0.0) or 1.0
    mean = sum(v for _, v in items) / len(items) if items else 0.0
    bars = []
    for i, (label, p) in enumerate(items):
        bars.append(
            {
                "label": labels.get(label) or label.replace("-", " ").replace("_", " "),
                "value": p,
                "percent": f"{p * 100:.1f}%",
                "width": max(round(p / top * BAR_WIDTH), 1),
                "y": i * 26,
                "above": p >= mean,
            }
        )
    return {"bars": bars, "height": len(bars) * 26, "width": BAR_WIDTH + 236, "max_bar": BAR_WIDTH}


SERIES = (
    ("model", "Model", "series-model"),
    ("group_popularity", "Popularity in specialty x segment", "series-group"),
    ("popularity", "Global popularity", "series-pop"),
    ("random", "Random", "series-random"),
)


def _metric(model, method: str, metric: str) -> float | None:
    evaluation = (model.metrics or {}).get("evaluation") or {}
    value = (evaluation.get("methods") or {}).get(method, {}).get(metric)
    return float(value) if isinstance(value, int | float) else None


def model_row(model) -> dict:
    """One table row of the model page."""
    calibration = (model.metrics or {}).get("calibration") or {}
    evaluation = (model.metrics or {}).get("evaluation") or {}
    return {
        "model": model,
        "auc": _metric(model, "model", "auc"),
        "ndcg": _metric(model, "model", "ndcg@5"),
        "recall": _metric(model, "model", "recall@5"),
        "group_ndcg": _metric(model, "group_popularity", "ndcg@5"),
        "brier": (evaluation.get("calibration") or calibration).get("brier"),
        "ece": (evaluation.get("calibration") or calibration).get("ece"),
        "ips": (evaluation.get("off_policy") or {}).get("ips"),
        "snips": (evaluation.get("off_policy") or {}).get("snips"),
    }


def metrics_chart(
    models: list, metric: str = "ndcg@5", width: int = 640, height: int = 240
) -> dict:
    """A line chart of one metric across model versions (oldest first), model beside baselines."""
    pad_left, pad_right, pad_top, pad_bottom = 48, 16, 16, 40
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    n = len(models)
    series: list[dict[str, Any]] = []
    values: list[float] = []
    for key, label, css in SERIES:
        measured = [(i, _metric(m, key, metric)) for i, m in enumerate(models)]
        points = [(i, v) for i, v in measured if v is not None]
        values.extend(v for _, v in points)
        series.append({"key": key, "label": label, "css": css, "raw": points})
    if not values:
        return {"empty": True, "metric": metric}
    top = max(1.0, max(values))

    def x(i: int) -> float:
        return pad_left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return pad_top + plot_h * (1 - v / top)

    for s in series:
        s["points"] = [{"x": round(x(i), 1), "y": round(y(v), 1), "value": v} for i, v in s["raw"]]
        s["path"] = " ".join(f"{p['x']},{p['y']}" for p in s["points"])
    ticks = [{"y": round(y(t * top / 4), 1), "label": f"{t * top / 4:.2f}"} for t in range(5)]
    labels = [
        {"x": round(x(i), 1), "label": m.model_version.split("#")[-1], "title": m.model_version}
        for i, m in enumerate(models)
    ]
    return {
        "empty": False,
        "metric": metric,
        "width": width,
        "height": height,
        "series": series,
        "ticks": ticks,
        "labels": labels,
        "plot_left": pad_left,
        "plot_right": width - pad_right,
        "plot_bottom": pad_top + plot_h,
        "label_y": pad_top + plot_h + 20,
    }
