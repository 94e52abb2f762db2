"""Drawing a figure's data (figures.FigureData) with matplotlib, and writing it as PNG or
SVG. The data (every point a table cell, the paper's points beside) is figures.py's.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

from advbench.files import write_atomic
from advbench.metrics import wilson_interval
from advbench.report.figures import FIGURE_FORMATS, FigureData, PanelData


def draw(fd: FigureData):
    """The matplotlib Figure. Each measured line has gid `measured:LABEL`, each paper
    series `paper:LABEL`, a restarts line `restarts:LABEL`, a minimal-norm curve
    `minimal:LABEL` (the worst case over attacks is a measured line of its own), so a
    reader (the tests) can tell them apart."""
    from matplotlib.figure import Figure

    n = len(fd.panels)
    ncols = max(1, min(fd.ncols, n))
    nrows = math.ceil(n / ncols)
    wrapped = [w for line in fd.caption for w in textwrap.wrap(line, 40 * ncols + 20)]
    cap_h = 0.16 * len(wrapped) + 0.3
    fig = Figure(figsize=(5.0 * ncols, 3.9 * nrows + cap_h), layout="constrained")
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[3.9] * nrows + [cap_h])
    for i, pd_ in enumerate(fd.panels):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        _draw_panel(ax, pd_)
    cap = fig.add_subplot(grid[nrows, :])
    cap.axis("off")
    cap.text(0, 1, "\n".join(wrapped), va="top", ha="left", fontsize=7, family="monospace")
    fig.suptitle("\n".join(textwrap.wrap(f"{fd.id}: {fd.title}", 50 * ncols + 20)), fontsize=10)
    return fig


def _draw_panel(ax, pd_: PanelData) -> None:
    panel = pd_.panel
    colors = [f"C{i % 10}" for i in range(len(pd_.series))]
    if panel.kind == "embedding":
        _draw_embedding(ax, pd_)
    else:
        starred = False
        for color, sd in zip(colors, pd_.series, strict=True):
            if panel.kind == "restarts" and sd.extra:
                ks = [k for k, _, _ in sd.extra["restarts"]]
                accs = [r / m * 100 for _, r, m in sd.extra["restarts"]]
                lows, highs = zip(*(wilson_interval(r, m) for _, r, m in sd.extra["restarts"]),
                                  strict=True)  # fmt: skip
                (line,) = ax.plot(ks, accs, marker=".", color=color, label=sd.series.label)
                line.set_gid(f"restarts:{sd.series.label}")
                ax.fill_between(ks, [v * 100 for v in lows], [v * 100 for v in highs],
                                color=color, alpha=0.15)  # fmt: skip
                continue
            if sd.extra.get("minimal"):
                xs, robust, n = zip(*sd.extra["minimal"], strict=True)
                (line,) = ax.step(xs, [r / m * 100 for r, m in zip(robust, n, strict=True)],
                                  where="post", color=color, linewidth=0.8, alpha=0.7)  # fmt: skip
                line.set_gid(f"minimal:{sd.series.label}")
            shown = [p for p in sd.points if isinstance(p.result.measured, (int, float))]
            if shown:
                xs = [p.x for p in shown]
                ys = [float(p.result.measured) for p in shown]
                lo = [y - (p.result.ci_low if p.result.ci_low is not None else y)
                      for y, p in zip(ys, shown, strict=True)]  # fmt: skip
                hi = [(p.result.ci_high if p.result.ci_high is not None else y) - y
                      for y, p in zip(ys, shown, strict=True)]  # fmt: skip
                bars = ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", markersize=4,
                                   capsize=3, color=color, label=sd.series.label)  # fmt: skip
                bars.lines[0].set_gid(f"measured:{sd.series.label}")
            if sd.paper:
                # one "★ paper" legend entry for all (a leading _ keeps a line out of it)
                (line,) = ax.plot(
                    [x for x, _, _ in sd.paper],
                    [v for _, v, _ in sd.paper],
                    linestyle="none",
                    marker="*",
                    markersize=11,
                    color=color,
                    markeredgecolor="black",
                    label=f"_paper: {sd.series.label}",
                )
                line.set_gid(f"paper:{sd.series.label}")
                starred = True
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.set_ylim(-2, 102)
        if panel.xscale != "linear":
            ax.set_xscale(panel.xscale)
        if panel.vline is not None:
            ax.axvline(panel.vline, linestyle="--", color="grey", linewidth=1)
        ax.grid(alpha=0.3)
        if starred:
            ax.plot([], [], linestyle="none", marker="*", markersize=9, color="white",
                    markeredgecolor="black", label="the paper's number")  # fmt: skip
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
    ax.set_title(panel.title, fontsize=9)
    if pd_.note:
        ax.text(0.5, 0.5, "\n".join(textwrap.wrap(pd_.note, 48)), transform=ax.transAxes,
                ha="center", va="center", fontsize=7,
                bbox={"boxstyle": "round", "facecolor": "lightyellow", "alpha": 0.9})  # fmt: skip


def _draw_embedding(ax, pd_: PanelData) -> None:
    sd = pd_.series[0]
    e = sd.extra
    if not e:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    xs = [p[0] for p in e["xy"]]
    ys = [p[1] for p in e["xy"]]
    points = ax.scatter(xs, ys, c=e["labels"], cmap="tab10", s=6, vmin=0, vmax=9)
    points.set_gid(f"embedding:{sd.series.label}")
    ax.legend(*points.legend_elements(), fontsize=6, title="label", title_fontsize=6,
              loc="best", markerscale=0.7)  # fmt: skip
    ax.set_xlabel("t-SNE 1 (arbitrary units)")
    ax.set_ylabel("t-SNE 2 (arbitrary units)")
    ax.text(0.02, 0.02, f"{sd.series.label}: DBI {e['dbi']:.2f}, n={e['n']}",
            transform=ax.transAxes, fontsize=7)  # fmt: skip


def write(fig, out_dir: Path, stem: str, formats=FIGURE_FORMATS) -> list[Path]:
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        buf = io.BytesIO()  # whole or not at all: another command may draw the same figure
        fig.savefig(buf, dpi=110, format=fmt)
        write_atomic(path, buf.getvalue())
        paths.append(path)
    return paths


__all__ = ["draw", "write"]
