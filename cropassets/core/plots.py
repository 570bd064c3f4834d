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
             knee: int, current: Sequence[float] | None = None) -> bytes:
    """Accuracy vs sequence length (CNN, baseline, current season) with the knee marked."""
    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    ax.plot(lengths, cnn, "o-", ms=3, label="CNN2D (validation fields)")
    if current is not None:
        ax.plot(lengths, current, "s--", ms=3, label="CNN2D (current season)")
    if baseline is not None:
        ax.plot(lengths, baseline, "^-", ms=3, label="random forest (same split)")
    ax.axvline(knee, color="k", lw=0.8, ls=":")
    ax.text(knee, ax.get_ylim()[0], f" knee: week {knee}", fontsize=7, va="bottom")
    ax.set_xlabel("sequence length (weeks since season start)")
    ax.set_ylabel("overall accuracy")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
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
