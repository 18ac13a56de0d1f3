"""What the plots draw: 1-based epochs with the selected one marked, integer ticks on counts, trial curves
coloured by the swept value with a legend, every value labelled on parallel coordinates, UA in the
confusion matrix title, different palettes for the two projections."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ser.report.plots import confusion_figure, curves_figure, unweighted_recall
from ser.sweep.plots import parallel_figure, rungs_figure


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(epochs: int) -> list[dict[str, float]]:
    return [
        {
            "epoch": e,
            "train/loss": 2 - 0.2 * e,
            "val/loss": 2 - 0.1 * e,
            "train/uar": 0.2 + 0.05 * e,
            "val/uar": 0.2,
        }
        for e in range(epochs)
    ]


def _rows() -> list[dict]:
    rows = []
    for i, (depth, epochs) in enumerate([(2, 2), (4, 5), (6, 5), (4, 2)]):
        history = [{"training_iteration": e, "val/uar": 0.3 + 0.01 * e * i} for e in range(1, epochs + 1)]
        rows.append(
            {
                "history": history,
                "status": "completed" if epochs == 5 else "stopped",
                "epochs": epochs,
                "best": history[-1]["val/uar"],
                "stopped_early": epochs < 5,
                "model.depth": depth,
                "optim.lr": 10.0 ** -(2 + i / 2),
                "model.pool": ["mean", "attn"][i % 2],
            }
        )
    return rows


def _integer_ticks(axis) -> bool:
    ticks = [
        t for t in axis.get_ticklocs() if axis.get_view_interval()[0] <= t <= axis.get_view_interval()[1]
    ]
    return bool(ticks) and all(float(t).is_integer() for t in ticks)


def test_curves_number_epochs_from_one_and_mark_the_selected_epoch() -> None:
    fig = curves_figure(
        {"fold 0": _history(6), "fold 1": _history(4)}, "cnn", selected={"fold 0": 3, "fold 1": 0}
    )
    ax_loss, ax_uar = fig.axes
    first_line = ax_loss.get_lines()[0]
    assert list(first_line.get_xdata()) == [1, 2, 3, 4, 5, 6]  # metrics.json's epoch 0 is epoch 1
    vertical = {float(line.get_xdata()[0]) for line in ax_uar.get_lines() if len(set(line.get_xdata())) == 1}
    assert {4.0, 1.0} <= vertical  # selected 0-based epochs 3 and 0, drawn at 4 and 1
    assert "selected epoch" in [t.get_text() for t in ax_uar.get_legend().get_texts()]
    assert _integer_ticks(ax_loss.xaxis) and _integer_ticks(ax_uar.xaxis)


def test_confusion_title_names_ua() -> None:
    confusion = np.array([[4, 0], [3, 1]])  # recalls 1.0 and 0.25: UA 0.625, WA 5/8
    assert unweighted_recall(confusion) == pytest.approx(0.625)
    assert unweighted_recall(np.array([[2, 0, 0], [0, 0, 0], [1, 0, 1]])) == pytest.approx(
        0.75
    )  # absent class
    title = confusion_figure(confusion.tolist(), ["a", "b"], "fold 0").axes[0].get_title()
    assert "fold 0" in title and "UA 0.625" in title and "WA 0.625" in title


def test_rungs_curves_coloured_by_the_swept_value_and_integer_counts() -> None:
    fig = rungs_figure(_rows(), "val/uar", [2], "asha", 5, colour_key="model.depth")
    ax_curve, ax_bar = fig.axes
    legends = [c for c in ax_curve.get_children() if isinstance(c, plt.matplotlib.legend.Legend)]
    texts = {t.get_text() for legend in legends for t in legend.get_texts()}
    assert {"2", "4", "6", "completed", "stopped"} <= texts
    assert any(legend.get_title().get_text() == "model.depth" for legend in legends)
    colours = [
        tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
        for line in ax_curve.get_lines()[:4]
    ]
    assert colours[1] == colours[3] != colours[0] != colours[2]  # the two depth-4 trials share a colour
    assert _integer_ticks(ax_bar.yaxis) and _integer_ticks(ax_bar.xaxis) and _integer_ticks(ax_curve.xaxis)


def test_rungs_continuous_value_gets_a_colour_bar() -> None:
    rows = _rows() + _rows()
    for i, row in enumerate(rows):
        row["optim.lr"] = 10.0 ** -(2 + i / 4)  # 8 distinct values: a colour bar, not a legend of 8
    fig = rungs_figure(rows, "val/uar", [2], "asha", 5, colour_key="optim.lr", sampler="loguniform")
    assert len(fig.axes) == 3 and "optim.lr" in fig.axes[2].get_ylabel()


def test_parallel_coordinates_label_every_category_and_integer_value() -> None:
    fig = parallel_figure(
        _rows(), ["model.depth", "optim.lr", "model.pool"], "val/uar", {"optim.lr": "loguniform"}
    )
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"2", "4", "6", "mean", "attn"} <= texts
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "model.depth",
        "optim.lr",
        "model.pool",
        "val/uar",
    ]


def test_projection_panels_use_different_palettes() -> None:
    from ser.report.analysis import Projection
    from ser.report.figures import projection_figure

    points = np.arange(24, dtype=float).reshape(12, 2)
    emotions = ["angry", "happy", "sad"] * 4
    speakers = ["s1", "s2", "s3"] * 4
    proj = Projection(points=points, method="pca", emotion_silhouette=None, speaker_silhouette=None)
    left, right = projection_figure(proj, emotions, speakers, "fold 0").axes
    emotion_colours = {tuple(np.round(c.get_facecolor()[0], 3)) for c in left.collections}
    speaker_colours = {tuple(np.round(c.get_facecolor()[0], 3)) for c in right.collections}
    assert len(emotion_colours) == 3 and len(speaker_colours) == 3
    assert not emotion_colours & speaker_colours
