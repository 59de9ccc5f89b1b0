"""Server-rendered chart geometry for the insight pages (SVG attributes, no inline styles)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

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
        **_off_policy_cells((model.metrics or {}).get("off_policy") or {}),
    }


def _off_policy_cells(off_policy: dict) -> dict:
    """The gate's doubly robust estimate of this model and of the model active then."""
    mine = off_policy.get("challenger") or {}
    active = off_policy.get("active") or {}
    ci = mine.get("dr_ci95") or [None, None]
    return {
        "ope_dr": mine.get("dr"),
        "ope_lo": ci[0],
        "ope_hi": ci[1],
        "ope_n": mine.get("n"),
        "ope_active": active.get("dr"),
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


# --- engagement: send-time heatmap --------------------------------------------------------

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HEAT_BUCKETS = 5  # colour classes heat-0 (lowest fifth) .. heat-4 (highest fifth)


def percent(p: float) -> str:
    """A probability as people read it: "31%", or "4.2%" below ten."""
    value = float(p) * 100
    return f"{value:.0f}%" if value >= 10 else f"{value:.1f}%"


def slot_words(weekday: int, hour: int, *, short: bool = False) -> str:
    """ "Tuesday 08:00" (or "Tue 08:00")."""
    name = WEEKDAY_NAMES[weekday]
    return f"{name[:3] if short else name} {hour:02d}:00"


def heat_buckets(grid) -> tuple[list[list[int]], list[dict], bool]:
    """Each slot's colour class by quantile of the grid, the legend, and whether it is flat.

    Five buckets of (about) a fifth of the slots each; a grid whose slots are all
    alike (the untrained default) is drawn in the middle colour.
    """
    values = np.asarray(grid, dtype=np.float64)
    flat_values = values.reshape(-1)
    low, high = float(flat_values.min()), float(flat_values.max())
    if high - low <= 1e-9 * max(abs(high), 1.0):
        middle = HEAT_BUCKETS // 2
        buckets = np.full(values.shape, middle, dtype=int)
        legend = [{"bucket": middle, "label": f"every slot {percent(high)}"}]
        return buckets.tolist(), legend, True
    cuts = np.quantile(flat_values, [i / HEAT_BUCKETS for i in range(1, HEAT_BUCKETS)])
    buckets = np.searchsorted(cuts, values, side="right")
    buckets = np.clip(buckets, 0, HEAT_BUCKETS - 1)
    legend = []
    for b in range(HEAT_BUCKETS):
        members = flat_values[buckets.reshape(-1) == b]
        if not len(members):
            continue
        lo, hi = percent(members.min()), percent(members.max())
        legend.append({"bucket": b, "label": lo if lo == hi else f"{lo}–{hi}"})
    return buckets.tolist(), legend, False


def heatmap(grid, best: list[dict] | None = None) -> dict:
    """A 7 x 24 send-time table: weekday rows (Monday first), local-hour columns.

    ``grid`` is the (7, 24) open probability by local weekday and hour;
    ``best`` the profile's best slots ({weekday, hour, score}), marked in the table
    unless every slot is alike.
    """
    buckets, legend, flat = heat_buckets(grid)
    best_slots = set() if flat else {(int(b["weekday"]), int(b["hour"])) for b in best or []}
    rows = []
    for w in range(7):
        cells = []
        for h in range(24):
            p = float(grid[w][h])
            cells.append(
                {
                    "hour": h,
                    "bucket": buckets[w][h],
                    "percent": percent(p),
                    "text": f"{slot_words(w, h, short=True)} — {percent(p)} open",
                    "best": (w, h) in best_slots,
                }
            )
        rows.append(
            {"weekday": w, "name": WEEKDAY_NAMES[w], "short": WEEKDAY_NAMES[w][:3], "cells": cells}
        )
    return {
        "rows": rows,
        "hours": [{"hour": h, "label": f"{h:02d}"} for h in range(24)],
        "legend": legend,
        "flat": flat,
    }
