"""The evaluation report's figures, each returned as PNG bytes so the HTML page can inline them."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ser.report.analysis import Projection, Reliability, SpeakerScore  # noqa: E402

DPI = 100


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def _short(speaker: str) -> str:
    return speaker.rsplit(":", 1)[-1]


def speaker_bars(scores: Sequence[SpeakerScore], chance: float, worst: int = 3) -> bytes:
    """UA per speaker, worst first; the worst `worst` in red and named, the mean and chance as lines."""
    n = len(scores)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.22 * max(n, 4)))
    values = [s.uar for s in scores]
    colours = ["#c0392b" if i < worst else "#2e86c1" for i in range(n)]
    ax.barh(range(n), values, color=colours)
    ax.set_yticks(range(n), [f"{_short(s.speaker)} ({s.gender or '?'}, {s.n})" for s in scores], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(
        float(np.mean(values)),
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"mean {np.mean(values):.2f}",
    )
    ax.axvline(chance, color="grey", linestyle=":", linewidth=1, label=f"chance {chance:.2f}")
    for i, value in enumerate(values):
        ax.text(min(value + 0.01, 0.93), i, f"{value:.2f}", va="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("UA of the speaker's test utterances")
    ax.set_title("UA per speaker (worst in red; speaker (gender, utterances))", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def recall_bars(recall: Mapping[str, float | None], chance: float) -> bytes:
    labels = [k for k, v in recall.items() if v is not None]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.5 + 0.7 * len(labels)), 3.2))
    ax.bar(range(len(labels)), [recall[k] for k in labels], color="#2e86c1")
    ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label=f"chance {chance:.2f}")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall")
    ax.set_title("recall per class (all test folds)", fontsize=10)
    ax.legend(fontsize=7)
    return _png(fig)


def reliability_diagram(rel: Reliability) -> bytes:
    """Accuracy against confidence per bin (the diagonal is perfect calibration), counts underneath."""
    fig, (ax, ax_count) = plt.subplots(
        2, 1, figsize=(5, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    centres = (rel.edges[:-1] + rel.edges[1:]) / 2
    width = rel.edges[1] - rel.edges[0]
    filled = rel.count > 0
    ax.bar(centres[filled], rel.accuracy[filled], width=width * 0.95, color="#2e86c1", label="accuracy")
    ax.bar(
        centres[filled],
        rel.confidence[filled] - rel.accuracy[filled],
        bottom=rel.accuracy[filled],
        width=width * 0.95,
        fill=False,
        hatch="//",
        edgecolor="#c0392b",
        linewidth=0.8,
        label="gap to mean confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability: ECE {rel.ece:.3f}, MCE {rel.mce:.3f}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax_count.bar(centres, rel.count, width=width * 0.95, color="grey")
    ax_count.set_xlabel("confidence (top-class probability)")
    ax_count.set_ylabel("utterances")
    ax_count.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_count.set_xlim(0, 1)
    return _png(fig)


def entropy_boxes(by_class: Mapping[str, np.ndarray]) -> bytes:
    labels = list(by_class)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.5 + 0.7 * len(labels)), 3.4))
    ax.boxplot([by_class[k] for k in labels], showfliers=True, flierprops={"markersize": 2})
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("entropy / log(classes)")
    ax.set_title("prediction entropy per true class\n(0 = certain, 1 = uniform guess)", fontsize=10)
    return _png(fig)


# The two projections use unrelated palettes, so a colour seen on the left never suggests a speaker on the
# right: emotions in Dark2 (8 saturated hues, tab20 past that), speakers in tab20b (muted, 20 shades).
EMOTION_PALETTE = "Dark2"
SPEAKER_PALETTE = "tab20b"


def _palette(name: str, n: int):
    cmap = plt.get_cmap(name if n <= plt.get_cmap(name).N else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _scatter(
    ax, points: np.ndarray, groups: np.ndarray, title: str, legend: bool, palette: str, marker: str
) -> None:
    names = sorted(set(groups.tolist()))
    for name, colour in zip(names, _palette(palette, len(names))):
        mask = groups == name
        ax.scatter(
            points[mask, 0], points[mask, 1], s=9, color=colour, marker=marker, label=_short(name), alpha=0.8
        )
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if legend:
        ax.legend(fontsize=6, markerscale=1.5, loc="best", ncol=1 if len(names) <= 8 else 2)


def projection_figure(proj: Projection, emotions: Sequence[str], speakers: Sequence[str], title: str):
    """Two panels of the same points: coloured by emotion (circles) and by speaker (squares)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6))
    _scatter(left, proj.points, np.asarray(emotions), "coloured by emotion", True, EMOTION_PALETTE, "o")
    _scatter(
        right,
        proj.points,
        np.asarray(speakers),
        "coloured by speaker",
        len(set(speakers)) <= 20,
        SPEAKER_PALETTE,
        "s",
    )
    fig.suptitle(f"{title}: {proj.method}", fontsize=10)
    return fig


def projection_panels(
    proj: Projection, emotions: Sequence[str], speakers: Sequence[str], title: str
) -> bytes:
    return _png(projection_figure(proj, emotions, speakers, title))
