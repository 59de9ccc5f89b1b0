"""Server-rendered geometry of the experiments page's chart (SVG attributes, no styles)."""

from __future__ import annotations

WIDTH, HEIGHT = 640, 260
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 16, 40
SERIES_CLASSES = ("series-a", "series-b", "series-c", "series-d", "series-e", "series-f")


def rate_chart(arms: list[dict]) -> dict:
    """Each arm's cumulative rate by day, with its always-valid 95% band.

    ``arms`` are the results' arms (each with ``daily``). Answers lines,
    bands (polygons), the y ticks in percent and the x labels.
    """
    days = sorted({d["date"] for arm in arms for d in arm.get("daily") or []})
    if not days:
        return {"empty": True}
    values = []
    for arm in arms:
        for d in arm.get("daily") or []:
            band = d.get("cumulative_rate_cs95") or d.get("cumulative_rate_ci95")
            if band:
                values += [band[0], band[1]]
            if d.get("cumulative_rate") is not None:
                values.append(d["cumulative_rate"])
    top = max(values, default=0.0) or 0.01
    top = top * 1.1
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    index = {day: i for i, day in enumerate(days)}

    def x(day: str) -> float:
        return PAD_LEFT + (index[day] / max(len(days) - 1, 1)) * plot_w

    def y(v: float) -> float:
        return PAD_TOP + plot_h - (max(v, 0.0) / top) * plot_h

    series = []
    for i, arm in enumerate(arms):
        daily = [d for d in arm.get("daily") or [] if d.get("cumulative_rate") is not None]
        line = " ".join(f"{x(d['date']):.1f},{y(d['cumulative_rate']):.1f}" for d in daily)
        upper, lower = [], []
        for d in daily:
            band = d.get("cumulative_rate_cs95") or d.get("cumulative_rate_ci95")
            if band:
                upper.append(f"{x(d['date']):.1f},{y(band[1]):.1f}")
                lower.append(f"{x(d['date']):.1f},{y(band[0]):.1f}")
        series.append(
            {
                "name": arm["name"],
                "css": SERIES_CLASSES[i % len(SERIES_CLASSES)],
                "line": line,
                "band": " ".join(upper + lower[::-1]),
                "single": len(daily) == 1,
                "points": [
                    {"x": round(x(d["date"]), 1), "y": round(y(d["cumulative_rate"]), 1)}
                    for d in daily
                ],
            }
        )
    ticks = [
        {"y": round(y(top * f), 1), "label": f"{top * f * 100:.1f}%"}
        for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    step = max(1, len(days) // 6)
    labels = [{"x": round(x(day), 1), "label": str(day)[5:]} for day in days[::step]]
    return {
        "empty": False,
        "width": WIDTH,
        "height": HEIGHT,
        "series": series,
        "ticks": ticks,
        "labels": labels,
        "plot_left": PAD_LEFT,
        "plot_right": WIDTH - PAD_RIGHT,
        "plot_bottom": PAD_TOP + plot_h,
    }
