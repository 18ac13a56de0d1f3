"""`ser report RUN_DIR | SWEEP_DIR`: one self-contained HTML page about a run's test predictions.

It reads what every run directory holds (`metrics.json`, `config.yaml`, `*/predictions.npz`; for a sweep
its `best/` trial) and writes `report.html` with inline CSS and base64 PNGs, nothing fetched from the
internet: the fold table, recall per class and the confusion matrix, UA per speaker with the worst
speakers named, a reliability diagram with ECE, prediction entropy per class, and a 2-D projection of the
penultimate layer coloured by emotion and by speaker with silhouette scores for both, the training curves
(the kept epoch marked) and the config.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ser.report import figures
from ser.report.analysis import entropy, entropy_by_class, per_speaker, project, reliability
from ser.report.metrics import metrics_from_confusion
from ser.report.predictions import FILENAME, Predictions, concat, read_predictions

REPORT = "report.html"


def read_metrics(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.muted{color:#666;font-size:.9em}.warn{color:#a04000}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em .4em .4em 0}
.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.verdict{background:#f7f9fc;border-left:4px solid #2e86c1;padding:.5em .8em}
pre.config{background:#f6f7f9;padding:.8em;max-height:32em;overflow:auto;font-size:.85em}
"""


def find_run(path: str | Path) -> tuple[Path, str]:
    """(the directory holding metrics.json, what it is: run | evaluation | sweep)."""
    path = Path(path)
    if (path / "best" / "metrics.json").is_file():
        return path / "best", "sweep"
    if (path / "metrics.json").is_file():
        metrics = read_metrics(path / "metrics.json")
        return path, "evaluation" if "evaluation" in metrics else "run"
    raise FileNotFoundError(
        f"{path}: no metrics.json (expected a `ser fit` run, a `ser evaluate` output or a sweep directory)"
    )


def load_predictions(run_dir: Path) -> list[Predictions]:
    return [read_predictions(p) for p in sorted(run_dir.glob(f"*/{FILENAME}"))]


# ------------------------------------------------------------------------------------------ helpers
def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _e(value: Any) -> str:
    return html.escape(str(value))


def _f(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1, cls: str = "") -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i < left else ""}">{_e(c)}</td>' for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _short(speaker: str) -> str:
    return speaker.rsplit(":", 1)[-1]


def _confusion_png(confusion: list[list[int]], labels: list[str], title: str) -> bytes:
    from ser.report.plots import plot_confusion

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_confusion(confusion, labels, Path(tmp) / "confusion.png", title)
        return path.read_bytes()


# ------------------------------------------------------------------------------------------ sections
def _fold_count(evaluated: Any, total: Any) -> str:
    """[0], 6 -> "fold 0 of 6"; [0, 1, 2], 6 -> "folds 0, 1, 2 of 6"; every fold -> "all 6 folds"."""
    if not isinstance(evaluated, list):
        return "?" if total is None else f"? of {total}"
    if isinstance(total, int) and sorted(evaluated) == list(range(total)) and total > 1:
        return f"all {total} folds"
    names = ", ".join(str(i) for i in evaluated)
    return f"{'fold' if len(evaluated) == 1 else 'folds'} {names} of {total}"


def _yes_no(independent: Any) -> str:
    if independent is True:
        return "yes: no speaker is in two of train, validation and test"
    if independent is False:
        return "no: a fold shares speakers between splits (its warnings say where)"
    return "unknown"


def _header(run_dir: Path, kind: str, metrics: dict[str, Any], cfg: dict[str, Any]) -> str:
    data = cfg.get("data", {})
    corpus = " + ".join(c.get("name", "?") for c in data.get("corpora") or []) or data.get("corpus", "?")
    protocol = metrics.get("protocol", {})
    evaluation = metrics.get("evaluation") or {}
    folds = _fold_count(protocol.get("evaluated_folds"), protocol.get("folds"))
    facts = [
        ("model", metrics.get("model")),
        ("feature", metrics.get("feature")),
        ("corpus", f"{corpus} ({data.get('root')})" if data.get("root") else corpus),
        ("classes", ", ".join(metrics.get("labels", []))),
        ("test folds", "the whole corpus" if evaluation.get("whole_corpus") else folds),
        ("utterances / speakers", f"{protocol.get('utterances')} / {protocol.get('speakers')}"),
        ("speaker-independent", _yes_no(protocol.get("speaker_independent"))),
    ]
    note = ""
    if kind == "sweep":
        note = (
            '<p class="verdict">The best trial of the sweep, chosen on validation; its test split was '
            "scored once.</p>"
        )
    if evaluation:
        labels = evaluation.get("labels", {})
        facts = [
            ("trained on", evaluation.get("trained_on")),
            ("evaluated on", evaluation.get("evaluated_on")),
            ("scored", "the whole corpus" if evaluation.get("whole_corpus") else "speaker folds"),
            ("evaluated classes", ", ".join(labels.get("evaluated", []))),
            (
                "dropped from the data",
                ", ".join(f"{k} ({v})" for k, v in labels.get("dropped", {}).items()) or "none",
            ),
            ("model classes absent", ", ".join(labels.get("absent", [])) or "none"),
            *facts,
        ]
    rows = "".join(f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>' for k, v in facts)
    title = f"{run_dir.parent.name if kind == 'sweep' else run_dir.name}"
    return (
        f"<h1>ser report: {_e(title)}</h1>"
        f'<p class="muted">{_e(kind)} directory {_e(run_dir)}; written {datetime.now():%Y-%m-%d %H:%M}</p>'
        f"{note}<table>{rows}</table>"
    )


def _folds(metrics: dict[str, Any]) -> str:
    rows = []
    for fold in metrics.get("folds", []):
        test = fold.get("test") or {}
        speakers = ", ".join(_short(s) for s in fold["speakers"]["test"][:12])
        more = len(fold["speakers"]["test"]) - 12
        speakers += f" (+{more})" if more > 0 else ""
        best = fold["selection"].get("best")
        rows.append(
            [
                fold["fold"],
                speakers,
                fold["sizes"]["test"],
                _f(test.get("wa")),
                _f(test.get("uar")),
                _f(test.get("f1")),
                _f(best),
                fold.get("epochs", ""),
            ]
        )
    summary = metrics.get("summary", {})
    if len(rows) > 1:
        cell = lambda k: f"{summary[k]['mean']:.3f} ± {summary[k]['sd']:.3f}" if k in summary else ""  # noqa: E731
        rows.append(["mean ± sd", "", "", cell("test/wa"), cell("test/uar"), cell("test/f1"), "", ""])
    metric = (metrics.get("folds") or [{}])[0].get("selection", {}).get("metric", "val/uar")
    header = ["fold", "test speakers", "utterances", "WA", "UA", "macro-F1", f"best {metric}", "epochs"]
    return "<h2>Test folds</h2>" + _table(header, rows, left=2)


def _classes(metrics: dict[str, Any]) -> str:
    labels = list(metrics.get("labels", []))
    confusion = metrics.get("confusion_total")
    if confusion is None:
        return ""
    m = metrics_from_confusion(confusion, labels)
    recall = m["per_class_recall"]
    present = sum(r is not None for r in recall.values())  # type: ignore[union-attr]
    support = np.asarray(confusion).sum(axis=1)
    rows = [
        [label, int(n), _f(recall[label]) if recall[label] is not None else "absent"]  # type: ignore[index]
        for label, n in zip(labels, support)
    ]
    return (
        "<h2>Classes</h2>"
        f"<p>Pooled over the test folds: WA {_f(m['wa'])}, UA {_f(m['uar'])}, macro-F1 {_f(m['f1'])} "
        f"(UA averages over the {present} classes present).</p>"
        '<div class="row">'
        + _table(["class", "test utterances", "recall"], rows)
        + _img(figures.recall_bars(recall, 1.0 / max(present, 1)), "recall per class")  # type: ignore[arg-type]
        + _img(_confusion_png(confusion, labels, "all test folds"), "confusion matrix")
        + "</div>"
    )


def _speakers(pooled: Predictions, worst: int) -> str:
    scores = per_speaker(pooled)
    chance = 1.0 / max(len(set(pooled.y.tolist())), 1)
    named = ", ".join(
        f"<b>{_e(_short(s.speaker))}</b> (UA {s.uar:.2f}, {s.n} utterances)" for s in scores[:worst]
    )
    rows = [[_short(s.speaker), s.gender or "?", s.n, s.classes, _f(s.uar), _f(s.wa)] for s in scores]
    spread = [s.uar for s in scores]
    return (
        "<h2>Speakers</h2>"
        f'<p id="worst-speakers">Worst speakers: {named}. UA per speaker ranges from {min(spread):.2f} '
        f"to {max(spread):.2f} (sd {np.std(spread):.2f}); every speaker is a test speaker of exactly one "
        "fold.</p>"
        + _img(figures.speaker_bars(scores, chance, worst), "UA per speaker")
        + "<details><summary>table</summary>"
        + _table(["speaker", "gender", "utterances", "classes", "UA", "WA"], rows)
        + "</details>"
    )


def _calibration(pooled: Predictions, model: str) -> str:
    rel = reliability(pooled.probs, pooled.y)
    note = (
        '<p class="warn">The SVM\'s probabilities are a softmax of its decision scores: they rank '
        "classes but are not calibrated.</p>"
        if model == "svm"
        else ""
    )
    by_class = entropy_by_class(pooled)
    h = entropy(pooled.probs)
    right = pooled.pred == pooled.y
    rows = []
    for k, label in enumerate(pooled.labels):
        mask = pooled.y == k
        if not mask.any():
            continue
        ok, bad = h[mask & right], h[mask & ~right]
        rows.append(
            [
                label,
                int(mask.sum()),
                _f(np.median(h[mask])),
                _f(np.median(ok)) if len(ok) else "",
                _f(np.median(bad)) if len(bad) else "",
            ]
        )
    return (
        "<h2>Confidence</h2>"
        f'<p id="ece">Expected calibration error (10 equal-width bins of the top-class probability): '
        f"<b>ECE {rel.ece:.3f}</b>, largest bin gap {rel.mce:.3f}; mean confidence "
        f"{pooled.probs.max(axis=1).mean():.3f} against accuracy {right.mean():.3f}.</p>{note}"
        '<div class="row">'
        + _img(figures.reliability_diagram(rel), "reliability diagram")
        + _img(figures.entropy_boxes(by_class), "prediction entropy per class")
        + "</div>"
        + _table(["class", "utterances", "median entropy", "… when right", "… when wrong"], rows)
    )


def _projection(parts: list[Predictions], method: str) -> str:
    with_emb = [p for p in parts if p.embeddings is not None and len(p) >= 3]
    if not with_emb:
        return (
            "<h2>Embeddings</h2><p class='muted'>No penultimate-layer embeddings were saved (the SVM has "
            "none).</p>"
        )
    rows = []
    for p in with_emb:
        q = project(p.embeddings, [p.labels[k] for k in p.y], p.speakers.tolist(), "pca")
        rows.append(
            [
                p.fold,
                len(set(p.speakers.tolist())),
                len(p),
                _f(q.emotion_silhouette),
                _f(q.speaker_silhouette),
            ]
        )
    chosen = max(with_emb, key=lambda p: (len(set(p.speakers.tolist())), len(p)))
    emotions = [chosen.labels[k] for k in chosen.y]
    proj = project(chosen.embeddings, emotions, chosen.speakers.tolist(), method)
    verdict = ""
    if proj.emotion_silhouette is not None and proj.speaker_silhouette is not None:
        more = (
            "speakers more than emotions"
            if proj.speaker_silhouette > proj.emotion_silhouette
            else "emotions more than speakers"
        )
        verdict = (
            f'<p class="verdict" id="separation">Fold {chosen.fold}: the penultimate layer separates '
            f"<b>{more}</b> (silhouette by emotion {proj.emotion_silhouette:.3f}, by speaker "
            f"{proj.speaker_silhouette:.3f}).</p>"
        )
    n_speakers = len(set(chosen.speakers.tolist()))
    title = f"fold {chosen.fold} test utterances ({n_speakers} speaker{'s' if n_speakers != 1 else ''})"
    return (
        "<h2>Embeddings</h2>"
        "<p>The input of the classifier's last layer for each test utterance. Each fold has its own model, "
        "so one fold is projected (the one with the most test speakers); the table gives every fold's "
        "silhouettes on the full embedding (higher = tighter groups).</p>"
        + verdict
        + f'<p class="muted" id="projection">{_e(title)}, projected by {_e(proj.method)}</p>'
        + _img(figures.projection_panels(proj, emotions, chosen.speakers.tolist(), title), "2-D projection")
        + _table(
            ["fold", "test speakers", "utterances", "silhouette by emotion", "silhouette by speaker"], rows
        )
    )


def _curves_png(metrics: dict[str, Any], title: str) -> bytes | None:
    from ser.report.plots import curves_figure

    folds = [f for f in metrics.get("folds", []) if f.get("history")]
    if not folds:
        return None
    fig = curves_figure(
        {f"fold {f['fold']}": f["history"] for f in folds},
        title,
        selected={f"fold {f['fold']}": (f.get("selection") or {}).get("epoch") for f in folds},
    )
    return figures._png(fig)


def _training(metrics: dict[str, Any]) -> str:
    """Loss and UA per epoch of every fold, the epoch whose checkpoint was kept marked (1-based)."""
    png = _curves_png(metrics, str(metrics.get("model", "")))
    if png is None:
        return (
            '<h2 id="training">Training</h2><p class="muted">No per-epoch history in metrics.json (an '
            "evaluation of a checkpoint, or a model trained without epochs).</p>"
        )
    chosen = []
    for f in metrics.get("folds", []):
        selection = f.get("selection") or {}
        if selection.get("epoch") is not None:
            chosen.append(
                f"fold {f['fold']}: epoch {int(selection['epoch']) + 1} of {f.get('epochs', '?')} "
                f"({selection.get('metric')} {_f(selection.get('best'))})"
            )
    return (
        '<h2 id="training">Training</h2>'
        "<p>Train (dashed) and validation (solid) per epoch, numbered from 1; the ringed point and dotted "
        "line mark the epoch whose checkpoint was kept, chosen on validation"
        + (": " + "; ".join(_e(c) for c in chosen) if chosen else "")
        + ".</p>"
        + _img(png, "training curves")
    )


def _config(config_file: Path, text: str | None) -> str:
    if not text:
        return '<h2 id="config">Config</h2><p class="muted">No config file next to metrics.json.</p>'
    return (
        '<h2 id="config">Config</h2>'
        f"<p>The resolved config the model was trained with (<code>{_e(config_file.name)}</code>): "
        "<code>ser fit --config</code> it to train again.</p>"
        f"<details><summary>{_e(config_file.name)} ({len(text.splitlines())} lines)</summary>"
        f'<pre class="config">{_e(text)}</pre></details>'
    )


def _problems(metrics: dict[str, Any]) -> str:
    warnings = sorted({w for f in metrics.get("folds", []) for w in f.get("warnings", [])})
    skipped = metrics.get("skipped", [])
    parts = []
    if warnings:
        parts.append("<ul>" + "".join(f'<li class="warn">{_e(w)}</li>' for w in warnings) + "</ul>")
    if skipped:
        rows = [[s["path"], s["reason"]] for s in skipped[:200]]
        more = f" (first 200 of {len(skipped)})" if len(skipped) > 200 else ""
        parts.append(
            f"<details><summary>{len(skipped)} skipped files{more}</summary>"
            + _table(["file", "reason"], rows, left=2)
            + "</details>"
        )
    return "<h2>Warnings and skipped files</h2>" + ("".join(parts) or "<p>none</p>")


def write_report(
    path: str | Path, out: str | Path | None = None, projection: str = "pca", worst: int = 3
) -> Path:
    """Write the HTML report of a run, evaluation or sweep directory; returns the page's path."""
    run_dir, kind = find_run(path)
    metrics = read_metrics(run_dir / "metrics.json")
    config_file = run_dir / "config.yaml"
    if kind == "sweep":
        config_file = run_dir.parent / "best_config.yaml"
    config_text = config_file.read_text() if config_file.is_file() else None
    cfg = yaml.safe_load(config_text) if config_text else {}
    parts = load_predictions(run_dir)
    body = [_header(run_dir, kind, metrics, cfg or {}), _folds(metrics)]
    pooled = concat(parts) if parts else None
    body.append(_classes(metrics))
    if pooled is not None:
        body += [
            _speakers(pooled, worst),
            _calibration(pooled, str(metrics.get("model"))),
            _projection(parts, projection),
        ]
    else:
        body.append(
            '<p class="warn">No per-utterance predictions (predictions.npz) in this directory, so no '
            "speaker, calibration or embedding plots: it was written before ser saved them; `ser evaluate` "
            "its checkpoints.</p>"
        )
    body += [_training(metrics), _config(config_file, config_text), _problems(metrics)]
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>ser report: {_e(run_dir.name)}</title><style>{CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
    target = Path(out) if out else (run_dir.parent if kind == "sweep" else run_dir) / REPORT
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
