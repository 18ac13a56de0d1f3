"""Session folds, fixed partitions from a file (checked for speaker leaks like computed folds) and the
class-balanced sampler."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.config import ConfigError, SyntheticConfig, load_config
from ser.data.datamodule import SERDataModule, TensorBatches, balanced_weights
from ser.data.folds import check_disjoint, group_folds, session_groups, speaker_folds
from ser.data.prepared import PreparedData, prepare_data
from ser.data.synthetic import write_corpus
from ser.data.types import CorpusError, Utterance

TINY = [
    "data.audio.duration=0.5",
    "data.batch_size=8",
    "model.depth=1",
    "model.channels=4",
    "trainer.progress_bar=false",
]
CFG = SyntheticConfig(speakers=4, per_label=3, labels=["neutral", "happy", "sad", "angry"], duration=0.3)


def written(tmp_path: Path, style: str, cfg: SyntheticConfig = CFG) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_corpus(tmp_path / style, style, cfg)
    return tmp_path / style


# ------------------------------------------------------------------------------------------ sessions
def test_group_folds_leave_one_session_out_and_keep_the_speaker_invariant():
    groups = {f"Ses0{s}{g}": f"Ses0{s}" for s in range(1, 6) for g in "FM"}
    folds = group_folds(groups, 0, val_folds=1)
    assert len(folds) == 5
    for i, fold in enumerate(folds):
        assert fold.test == (f"Ses0{i + 1}F", f"Ses0{i + 1}M")
        assert fold.val == (f"Ses0{(i + 1) % 5 + 1}F", f"Ses0{(i + 1) % 5 + 1}M")
        assert len(fold.train) == 6 and fold.warnings == ()
        check_disjoint({"train": fold.train, "val": fold.val, "test": fold.test}, groups)
    two = group_folds({"a1": "A", "a2": "A", "b1": "B"}, 0)
    assert [f.test for f in two] == [("a1", "a2"), ("b1",)]
    assert any("validation session" in w for w in two[0].warnings)


def test_session_groups_refuse_a_speaker_in_two_sessions_and_missing_sessions():
    def utt(speaker, session):
        return Utterance(
            id=f"{speaker}{session}", path="x", speaker=speaker, label="sad", corpus="c", session=session
        )

    assert session_groups([utt("a", "s1"), utt("a", "s1"), utt("b", "s2")]) == {"a": "s1", "b": "s2"}
    with pytest.raises(ConfigError, match="speaker a is in sessions s1 and s2"):
        session_groups([utt("a", "s1"), utt("a", "s2")])
    with pytest.raises(ConfigError, match="needs a session for every utterance"):
        session_groups([utt("a", None)])


def test_prepare_data_folds_iemocap_by_session(tmp_path):
    root = written(tmp_path, "iemocap")
    cfg = load_config(["data/iemocap"], [*TINY, f"data.root={root}", "data.val_folds=0"])
    prepared = prepare_data(cfg, progress=False)
    assert [f.test for f in prepared.folds] == [
        ("iemocap:Ses01F", "iemocap:Ses01M"),
        ("iemocap:Ses02F", "iemocap:Ses02M"),
    ]
    assert prepared.labels == ["neutral", "happy", "sad", "angry"] and len(prepared.y) == 48
    ravdess = load_config(
        ["data/ravdess"], [*TINY, f"data.root={written(tmp_path, 'ravdess')}", "data.fold_by=session"]
    )
    with pytest.raises(ConfigError, match="data.fold_by"):
        prepare_data(ravdess, progress=False)


# ---------------------------------------------------------------------------------------- partitions
def emodb_cfg(tmp_path: Path, partition: Path | str, *extra: str):
    return load_config(
        ["data/emodb"],
        [*TINY, f"data.root={written(tmp_path, 'emodb')}", f"data.partition={partition}", *extra],
    )


def test_speaker_partition_from_yaml(tmp_path):
    spec = tmp_path / "folds.yaml"
    spec.write_text(
        "by: speaker\nfolds:\n  - {test: ['03'], val: ['08']}\n"
        "  - {test: [emodb:10], val: ['09'], train: ['03', '08']}\n"
    )
    prepared = prepare_data(emodb_cfg(tmp_path, spec), progress=False)
    first, second = prepared.folds
    assert (first.train, first.val, first.test) == (("emodb:09", "emodb:10"), ("emodb:08",), ("emodb:03",))
    assert (second.train, second.val, second.test) == (("emodb:03", "emodb:08"), ("emodb:09",), ("emodb:10",))
    dm = SERDataModule(emodb_cfg(tmp_path, spec, "data.fold=1"), prepared, 1)
    assert dm.split_sizes() == {"train": 24, "val": 12, "test": 12}


@pytest.mark.parametrize(
    "text, message",
    [
        ("folds:\n  - {test: [3]}\n", r"1 speaker\(s\) not in the data, e.g. \['3'\] \(quote ids"),
        ("folds:\n  - {test: ['03'], train: ['03', '08']}\n", "is in both train and test in fold 0"),
        ("folds:\n  - {test: ['03'], train: ['08']}\n", "do not cover the set exactly: missing"),
        ("folds: []\n", "non-empty list `folds`"),
        ("by: file\nfolds:\n  - {test: ['03']}\n", "by: 'file' must be speaker or utterance"),
        ("folds:\n  - {test: ['03'], dev: ['08']}\n", "unknown key"),
    ],
)
def test_bad_partition_files_name_the_file_and_the_problem(tmp_path, text, message):
    spec = tmp_path / "folds.yaml"
    spec.write_text(text)
    with pytest.raises(CorpusError, match=message) as info:
        prepare_data(emodb_cfg(tmp_path, spec), progress=False)
    assert str(spec) in str(info.value)


def emobox(folder: Path, folds: list[dict[str, list[str]]]) -> Path:
    for n, fold in enumerate(folds, 1):
        (folder / f"fold_{n}").mkdir(parents=True)
        for split, stems in fold.items():
            lines = [
                json.dumps({"key": f"emodb-{s}", "wav": f"downloads/emodb/wav/{s}.wav", "emo": "x"})
                for s in stems
            ]
            (folder / f"fold_{n}" / f"emodb_{split}_fold_{n}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_emobox_utterance_folds_are_used_exactly_and_leaks_refused(tmp_path):
    root = written(tmp_path, "emodb")
    stems = sorted(p.stem for p in root.rglob("*.wav"))
    of = lambda spk: [s for s in stems if s.startswith(spk)]  # noqa: E731
    listed = [s for s in stems if "a04" not in s]  # each speaker's third text (a04) is left out
    test = [s for s in of("03") if s in listed]
    train = [s for s in listed if s not in test]
    folder = emobox(tmp_path / "emobox", [{"train": train, "test": test}])
    prepared = prepare_data(emodb_cfg(tmp_path, folder), progress=False)
    (fold,) = prepared.folds
    assert fold.test == ("emodb:03",) and fold.val == () and "NOT speaker-independent" in fold.warnings[0]
    assert sorted(i.split(":")[1] for i in prepared.utterance_ids) == listed
    left_out = [s for s in prepared.skipped if s.reason.startswith("not in the partition")]
    assert len(left_out) == len(stems) - len(listed) == 16
    leaky = emobox(tmp_path / "leaky", [{"train": of("03")[1:] + of("08"), "test": of("03")[:1]}])
    with pytest.raises(CorpusError, match="speaker-dependent split: 'emodb:03' is in both train and test"):
        prepare_data(emodb_cfg(tmp_path, leaky), progress=False)
    with pytest.raises(CorpusError, match="no fold_N folders"):
        prepare_data(emodb_cfg(tmp_path, tmp_path / "emodb"), progress=False)


def test_manifest_split_column_is_one_checked_fold(tmp_path, wav_writer):
    rows = ["path,label,speaker,split"]
    for spk, split in (("a", "train"), ("b", "train"), ("c", "val"), ("d", "test")):
        for label in ("sad", "happy"):
            wav_writer(tmp_path / f"{spk}_{label}.wav")
            rows.append(f"{spk}_{label}.wav,{label},{spk},{split}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    cfg = load_config(
        ["data/manifest"], [*TINY, f"data.root={tmp_path / 'm.csv'}", "data.partition=manifest"]
    )
    (fold,) = prepare_data(cfg, progress=False).folds
    assert (fold.train, fold.val, fold.test) == (
        ("manifest:a", "manifest:b"),
        ("manifest:c",),
        ("manifest:d",),
    )
    (tmp_path / "m.csv").write_text(
        "\n".join([*rows, "a_sad.wav,sad,a,test"]).replace("a_sad.wav,sad,a,train\n", "") + "\n"
    )
    with pytest.raises(CorpusError, match="'manifest:a' is in both train and test"):
        prepare_data(cfg, progress=False)
    (tmp_path / "m.csv").write_text("path,label,speaker\na_sad.wav,sad,a\n")
    with pytest.raises(CorpusError, match="needs a split"):
        prepare_data(cfg, progress=False)


# ------------------------------------------------------------------------------------------- sampler
def test_balanced_batches_draw_every_class_equally_from_the_generator():
    y = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    x = torch.arange(100, dtype=torch.float32).unsqueeze(1)
    weights = balanced_weights(y.numpy(), 3)
    batches = TensorBatches(x, y, 10, shuffle=True, seed=7, weights=weights)
    drawn = Counter(int(c) for _ in range(200) for _, yb in batches for c in yb)
    assert sum(drawn.values()) == 200 * 100
    assert all(abs(drawn[c] / 20000 - 1 / 3) < 0.02 for c in range(3)), drawn
    again = TensorBatches(x, y, 10, shuffle=True, seed=7, weights=weights)
    assert [xb.tolist() for xb, _ in TensorBatches(x, y, 10, shuffle=True, seed=7, weights=weights)] == [
        xb.tolist() for xb, _ in again
    ]
    plain = Counter(int(c) for _, yb in TensorBatches(x, y, 10, shuffle=True, seed=7) for c in yb)
    assert plain == {0: 90, 1: 9, 2: 1}  # shuffle: every item once per epoch


@pytest.mark.parametrize("resident", [True, False])
def test_datamodule_balanced_sampler_on_both_loader_paths(resident):
    rng = np.random.default_rng(0)
    speakers = [f"c:s{i % 4}" for i in range(200)]
    y = np.array([0 if i % 10 else 1 for i in range(200)], dtype=np.int64)  # 10% class 1
    prepared = PreparedData(
        labels=["neutral", "sad"],
        kind="logmel",
        waveform_mode=False,
        x=rng.normal(size=(200, 1, 4, 4)).astype(np.float32),
        y=y,
        speakers=speakers,
        utterance_ids=[f"c:{i}" for i in range(200)],
        genders={},
        folds=speaker_folds(sorted(set(speakers)), 4, 1),
    )
    cfg = load_config(
        overrides=["data.sampler=balanced", "data.batch_size=16", f"data.device_resident={resident}"]
    )
    counts: Counter[int] = Counter()
    dm = SERDataModule(cfg, prepared, 0)
    loader = dm.train_dataloader()
    assert isinstance(loader, TensorBatches) == resident
    for _ in range(30):
        counts.update(int(c) for _, yb in loader for c in yb)
    assert abs(counts[1] / sum(counts.values()) - 0.5) < 0.05, counts
    shuffled = SERDataModule(load_config(overrides=["data.batch_size=16"]), prepared, 0).train_dataloader()
    share = Counter(int(c) for _, yb in shuffled for c in yb)
    assert share[1] / sum(share.values()) < 0.15
