"""Server-drawn SVG for the console: no chart library, no script, nothing fetched from elsewhere.

Each function returns markup (`Markup`, so Jinja inserts it as is); every label inside is escaped here. Sizes
are in viewBox units and the SVG scales to its container's width (console.css).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ("#2563eb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2")


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def columns(points: Sequence[tuple[str, float, float]], *, height: int = 160, label: str = "",
            width: int = 1300) -> Markup:
    """A column per point: its total, with the part in red (calls per minute and their errors).

    `points` are (x label, total, part). The first and last x labels are written under the axis. `width` is
    about the pixels the chart is drawn in, so its text stays the page's size.
    """
    if not points:
        return Markup(f'<svg class="chart" viewBox="0 0 {width} 40" role="img" aria-label="{escape(label)}">'
                      '<text x="8" y="24" class="muted">no calls in this window</text></svg>')
    top = max(p[1] for p in points) or 1
    plot_h, base = height - 30, height - 20
    step = (width - 50) / len(points)
    bar = max(1.0, step * 0.8)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">',
             f'<text x="0" y="12" class="axis">{_fmt(top)}</text>',
             f'<line x1="44" y1="{base}" x2="{width}" y2="{base}" class="axis-line"/>']
    for i, (x_label, total, part) in enumerate(points):
        x = 46 + i * step
        h = plot_h * total / top
        e = plot_h * part / top
        parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar:.1f}" height="{h:.1f}" class="bar">'
                     f'<title>{escape(x_label)}: {_fmt(total)} calls, {_fmt(part)} errors</title></rect>')
        if part:
            parts.append(f'<rect x="{x:.1f}" y="{base - e:.1f}" width="{bar:.1f}" height="{e:.1f}" class="bar-bad"/>')
    parts.append(f'<text x="46" y="{height - 4}" class="axis">{escape(points[0][0])}</text>')
    parts.append(f'<text x="{width}" y="{height - 4}" class="axis" text-anchor="end">{escape(points[-1][0])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def meter(value: float | None, whole: float | None, *, warn_at: float | None = None, label: str = "") -> Markup:
    """A horizontal bar, value/whole filled (a job's progress, a share); grey and striped when whole is unknown."""
    width, height = 200, 14
    if value is None or not whole:
        return Markup(f'<svg class="meter" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
                      f'<rect width="{width}" height="{height}" class="meter-unknown"/></svg>')
    share = max(0.0, min(1.0, value / whole))
    cls = "meter-warn" if warn_at is not None and value > warn_at else "meter-fill"
    return Markup(f'<svg class="meter" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
                  f'<rect width="{width}" height="{height}" class="meter-back"/>'
                  f'<rect width="{width * share:.1f}" height="{height}" class="{cls}"/></svg>')


def convergence(series: dict[str, list[float | None]], rounds: Sequence[int], *, low: float, high: float,
                reference: float | None = None, reference_label: str = "", label: str = "",
                height: int = 240, width: int = 1300) -> Markup:
    """One line per named series over the debate's rounds, a dot per value; an optional horizontal reference
    line (the 0.8 consensus threshold). Values outside [low, high] are clipped to the frame."""
    left, right, top_pad, bottom = 48, 170, 12, 28
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    span = (high - low) or 1.0

    def y(v: float) -> float:
        return top_pad + plot_h * (1 - (min(max(v, low), high) - low) / span)

    def x(i: int) -> float:
        return left + (plot_w * i / (len(rounds) - 1) if len(rounds) > 1 else plot_w / 2)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">',
             f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
             'class="axis-line"/>',
             f'<text x="{left - 6}" y="{y(high) + 4:.1f}" class="axis" text-anchor="end">{_fmt(high)}</text>',
             f'<text x="{left - 6}" y="{y(low) + 4:.1f}" class="axis" text-anchor="end">{_fmt(low)}</text>']
    for i, r in enumerate(rounds):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 8}" class="axis" text-anchor="middle">round {r}</text>')
    if reference is not None:
        parts.append(f'<line x1="{left}" y1="{y(reference):.1f}" x2="{left + plot_w}" y2="{y(reference):.1f}" '
                     'class="ref-line"/>')
        parts.append(f'<text x="{left + 6}" y="{y(reference) - 5:.1f}" class="axis ref-label">'
                     f'{escape(reference_label)}</text>')
    ends = _dodge({name: y(v[-1]) for name, v in ((n, [u for u in vs if u is not None]) for n, vs in series.items())
                   if v}, gap=15, low=top_pad + 4, high=top_pad + plot_h)
    for n, (name, values) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        pts = [(x(i), y(v), v) for i, v in enumerate(values) if v is not None]
        if len(pts) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for px, py, v in pts:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color}">'
                         f'<title>{escape(name)}: {_fmt(v)}</title></circle>')
        if pts:
            parts.append(f'<text x="{left + plot_w + 10}" y="{ends[name] + 4:.1f}" fill="{color}" '
                         f'class="series-label">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _dodge(ys: dict[str, float], gap: float, low: float, high: float) -> dict[str, float]:
    """End labels moved apart so none overlaps the next (at least `gap` apart), kept within [low, high]."""
    order = sorted(ys, key=ys.get)
    placed: dict[str, float] = {}
    last = low - gap
    for name in order:
        placed[name] = max(ys[name], last + gap)
        last = placed[name]
    overflow = last - high
    if overflow > 0:  # pushed past the bottom: shift everything up, as far as the top allows
        for name in placed:
            placed[name] = max(low, placed[name] - overflow)
    return placed
