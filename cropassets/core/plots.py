"""Small PNG figures for asset metadata (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def scalogram_examples_png(scalograms: np.ndarray, labels: np.ndarray, class_names: dict,
                           feature_names: Sequence[str], per_class: int = 2,
                           feature: int = 0) -> bytes:
    """Grid of example scalograms: rows = classes, columns = examples of that class.

    Args:
        scalograms: (N, F, S, T) magnitudes.
        labels: (N,) class codes.
        class_names: Code -> name.
        feature_names: F names.
        per_class: Examples per class.
        feature: Feature index shown.

    Returns:
        PNG bytes.
    """
    codes = [c for c in sorted(class_names) if (labels == c).any()]
    fig, axes = plt.subplots(len(codes), per_class, figsize=(1.6 * per_class, 0.9 * len(codes)),
                             squeeze=False, dpi=72)
    for r, code in enumerate(codes):
        idx = np.flatnonzero(labels == code)[:per_class]
        for c in range(per_class):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(idx):
                ax.imshow(scalograms[idx[c], feature], aspect="auto", origin="lower",
                          cmap="magma")
            if c == 0:
                ax.set_ylabel(class_names[code], fontsize=7, rotation=0, ha="right")
    fig.suptitle(f"|CWT| of {feature_names[feature]} (scale up, week right)", fontsize=7)
    return _png(fig)


def knee_png(lengths: Sequence[int], cnn: Sequence[float], baseline: Sequence[float] | None,
             knee: int, current: Sequence[float] | None = None, *,
             served: Sequence[float] | None = None,
             served_kinds: Sequence[str] | None = None) -> bytes:
    """Accuracy vs sequence length (CNN, baseline, served, current season), knee marked.

    Args:
        lengths: Sequence lengths k, weeks.
        cnn: CNN2D validation accuracy per k.
        baseline: Random-forest validation accuracy per k (same split), or None.
        knee: Knee week.
        current: CNN2D accuracy on the current season's held-back labels per k, or None.
        served: Validation accuracy of the model served at each k (the better of the two
            under the rule), or None.
        served_kinds: Kind served at each k (``cnn2d``, ``random_forest``,
            ``combination``): the served curve's markers show which.
    """
    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    if served is not None:
        ax.plot(lengths, served, "-", lw=5, color="0.75", alpha=0.7, zorder=1,
                label="served map (better on validation)")
        if served_kinds is not None:
            marks = {"cnn2d": ("o", "CNN2D"), "random_forest": ("^", "random forest"),
                     "combination": ("D", "both (mean)")}
            for kind, (marker, name) in marks.items():
                pts = [(k, a) for k, a, s in zip(lengths, served, served_kinds, strict=True)
                       if s == kind]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker, ms=7, mfc="none", mec="0.35",
                            zorder=2, label=f"served: {name}")
    ax.plot(lengths, cnn, "o-", ms=3, label="CNN2D (validation fields)", zorder=3)
    if current is not None:
        ax.plot(lengths, current, "s--", ms=3, label="CNN2D (current season)", zorder=3)
    if baseline is not None:
        ax.plot(lengths, baseline, "^-", ms=3, label="random forest (same split)", zorder=3)
    ax.axvline(knee, color="k", lw=0.8, ls=":")
    ax.text(knee, ax.get_ylim()[0], f" knee: week {knee}", fontsize=7, va="bottom")
    ax.set_xlabel("sequence length (weeks since season start)")
    ax.set_ylabel("overall accuracy")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    return _png(fig)


def class_profiles_png(series: np.ndarray, labels: np.ndarray, class_names: dict,
                       feature_name: str = "NDVI", week_labels: Sequence[str] | None = None
                       ) -> bytes:
    """Median weekly profile of one feature per class, with its inter-quartile band.

    Args:
        series: (N, T) values of one feature per sample and week (NaN = no observation).
        labels: (N,) class codes.
        class_names: Code -> name (classes without samples are left out).
        feature_name: Y-axis label.
        week_labels: Optional T tick labels (weeks of season by default).

    Returns:
        PNG bytes.
    """
    series = np.asarray(series, dtype=np.float64)
    t = np.arange(1, series.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(5, 3), dpi=72)
    cmap = plt.get_cmap("tab10")
    for i, code in enumerate(sorted(class_names)):
        rows = series[labels == code]
        if not len(rows):
            continue
        seen = np.isfinite(rows).any(axis=0)
        if not seen.any():
            continue
        with np.errstate(all="ignore"):
            q = np.full((3, rows.shape[1]), np.nan)
            q[:, seen] = np.nanpercentile(rows[:, seen], [25, 50, 75], axis=0)
        ax.plot(t, q[1], "o-", ms=2, lw=1, color=cmap(i % 10), label=class_names[code])
        ax.fill_between(t, q[0], q[2], color=cmap(i % 10), alpha=0.15, lw=0)
    if week_labels is not None:
        ax.set_xticks(t, list(week_labels), fontsize=6, rotation=45)
    ax.set_xlabel("week of season")
    ax.set_ylabel(f"{feature_name} (median, IQR)")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def confusion_png(matrices: dict[str, np.ndarray], class_names: Sequence[str]) -> bytes:
    """Confusion matrices side by side, coloured by row share, annotated with counts.

    Args:
        matrices: Title -> (C, C) counts (rows true class, columns predicted).
        class_names: C names.

    Returns:
        PNG bytes.
    """
    n = max(1, len(matrices))
    c = len(class_names)
    size = 0.32 * c + 1.2
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), dpi=72, squeeze=False)
    for ax, (title, m) in zip(axes[0], matrices.items(), strict=False):
        m = np.asarray(m, dtype=np.float64)
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for r in range(c):
            for k in range(c):
                if m[r, k]:
                    ax.text(k, r, f"{int(m[r, k])}", ha="center", va="center", fontsize=5,
                            color="white" if share[r, k] > 0.5 else "black")
        acc = np.trace(m) / m.sum() if m.sum() else float("nan")
        ax.set_title(f"{title} (OA {acc:.2f})", fontsize=7)
        ax.set_xticks(range(c), class_names, fontsize=5, rotation=60)
        ax.set_yticks(range(c), class_names, fontsize=5)
        ax.set_xlabel("predicted", fontsize=6)
        ax.set_ylabel("true", fontsize=6)
    return _png(fig)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Inline a (small) PNG as Markdown for Dagster metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
