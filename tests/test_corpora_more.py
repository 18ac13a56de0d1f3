"""EMO-DB, IEMOCAP, SAVEE, ESD and manifest adapters: files in each corpus's real naming (hand-made and
written by `ser data synth --style`), exact counts, every skipped file with its reason, merging."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import pytest

from ser.config import CorpusSpec, DataConfig, SyntheticConfig, load_config
from ser.data.corpora import scan_corpus
from ser.data.dataset import build_dataset
from ser.data.synthetic import NamingWarning, write_corpus
from ser.data.types import CorpusError

SMALL = SyntheticConfig(speakers=4, per_label=3, labels=["neutral", "happy", "sad", "angry"], duration=0.3)


def reasons(scan, root: Path) -> dict[str, str]:
    out = {}
    for s in scan.skipped:
        try:
            out[Path(s.path).relative_to(root).as_posix()] = s.reason
        except ValueError:
            out[s.path] = s.reason
    return out


def summary(scan) -> set[tuple]:
    return {(u.id, u.speaker, u.label, u.gender) for u in scan.utterances}


def synth(tmp_path: Path, style: str, cfg: SyntheticConfig = SMALL) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NamingWarning)
        write_corpus(tmp_path / style, style, cfg)
    return tmp_path / style


# -------------------------------------------------------------------------------------------- emodb
def test_emodb_names_speakers_genders_and_skips(tmp_path, wav_writer):
    root = tmp_path / "emodb"
    for name in ("03a01Fa", "08a02Wb", "16b10La", "10a04Ed"):
        wav_writer(root / "wav" / f"{name}.wav")
    wav_writer(root / "wav/03a01Xa.wav")
    wav_writer(root / "wav/99a01Fa.wav")
    wav_writer(root / "wav/03a01Fa_copy.wav")
    wav_writer(root / "other/03a01Fa.wav")
    scan = scan_corpus(CorpusSpec(name="emodb", root=str(root)))
    assert summary(scan) == {
        ("emodb:03a01Fa", "emodb:03", "happy", "m"),
        ("emodb:08a02Wb", "emodb:08", "angry", "f"),
        ("emodb:16b10La", "emodb:16", "boredom", "f"),
        ("emodb:10a04Ed", "emodb:10", "disgust", "m"),
    }
    skipped = reasons(scan, root)
    assert skipped["wav/03a01Xa.wav"] == "unknown emotion letter X (expected one of WLEAFTN)"
    assert skipped["wav/99a01Fa.wav"].startswith("speaker 99 is not an EMO-DB actor")
    assert "does not match the EMO-DB pattern" in skipped["wav/03a01Fa_copy.wav"]
    assert "duplicate of" in skipped["wav/03a01Fa.wav"] or "duplicate of" in skipped["other/03a01Fa.wav"]
    assert len(skipped) == 4


def test_emodb_synthetic_corpus_counts_and_boredom_stands_in_for_calm(tmp_path):
    cfg = SyntheticConfig(speakers=4, per_label=3, labels=["neutral", "calm", "surprised"], duration=0.3)
    with pytest.warns(NamingWarning, match=r"emodb has no code for \['surprised'\]"):
        write_corpus(tmp_path, "emodb", cfg)
    scan = scan_corpus(CorpusSpec(name="emodb", root=str(tmp_path)))
    assert len(scan.utterances) == 4 * 2 * 3 and scan.skipped == []
    assert Counter(u.label for u in scan.utterances) == {"neutral": 12, "boredom": 12}
    genders = {u.speaker: u.gender for u in scan.utterances}
    assert genders == {"emodb:03": "m", "emodb:08": "f", "emodb:10": "m", "emodb:09": "f"}


# ------------------------------------------------------------------------------------------ iemocap
IEMOCAP_LABELS = {
    "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt": [
        ("Ses01F_impro01_F000", "neu"),
        ("Ses01F_impro01_M000", "ang"),
        ("Ses01F_impro01_F001", "exc"),
        ("Ses01F_impro01_M001", "xxx"),
        ("Ses01F_impro01_F002", "fru"),
    ],
    "Session1/dialog/EmoEvaluation/Ses01M_script01_1.txt": [("Ses01M_script01_1_F000", "sad")],
}


@pytest.fixture
def iemocap_root(tmp_path, wav_writer) -> Path:
    root = tmp_path / "IEMOCAP_full_release"
    for rel, turns in IEMOCAP_LABELS.items():
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        for k, (turn, code) in enumerate(turns):
            lines += [
                f"[{k}.0100 - {k}.9000]\t{turn}\t{code}\t[2.5000, 3.0000, 2.5000]",
                "C-E2:\tNeutral;\t()",
                "",
            ]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("\n".join(lines))
    wav = root / "Session1/sentences/wav"
    for turn in ("F000", "M000", "F001", "M001", "F002", "M002"):
        wav_writer(wav / "Ses01F_impro01" / f"Ses01F_impro01_{turn}.wav")
    wav_writer(wav / "Ses01M_script01_1/Ses01M_script01_1_F000.wav")
    wav_writer(wav / "Ses01F_impro02/Ses01F_impro02_F000.wav")  # its label file is missing
    wav_writer(wav / "Ses01F_impro01/notes.wav")
    wav_writer(root / "Session1/dialog/wav/Ses01F_impro01.wav")
    wav_writer(root / "Session2/sentences/wav/Ses01F_impro01/Ses01F_impro01_F009.wav")  # wrong session
    return root


def test_iemocap_labels_from_emoevaluation_speakers_sessions_and_skips(iemocap_root):
    scan = scan_corpus(CorpusSpec(name="iemocap", root=str(iemocap_root)))
    assert summary(scan) == {
        ("iemocap:Ses01F_impro01_F000", "iemocap:Ses01F", "neutral", "f"),
        ("iemocap:Ses01F_impro01_M000", "iemocap:Ses01M", "angry", "m"),
        ("iemocap:Ses01F_impro01_F001", "iemocap:Ses01F", "excited", "f"),
        ("iemocap:Ses01F_impro01_F002", "iemocap:Ses01F", "frustrated", "f"),
        ("iemocap:Ses01M_script01_1_F000", "iemocap:Ses01F", "sad", "f"),
    }
    assert {u.session for u in scan.utterances} == {"iemocap:Ses01"}
    label_file = "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    assert reasons(scan, iemocap_root) == {
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav": (
            f"no majority label (xxx) in {label_file}"
        ),
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M002.wav": (
            f"no label for Ses01F_impro01_M002 in {label_file}"
        ),
        "Session1/sentences/wav/Ses01F_impro02/Ses01F_impro02_F000.wav": (
            "no label for Ses01F_impro02_F000 in Session1/dialog/EmoEvaluation/Ses01F_impro02.txt (missing)"
        ),
        "Session1/sentences/wav/Ses01F_impro01/notes.wav": (
            "name does not match the IEMOCAP turn pattern Ses01F_impro01_F000"
        ),
        "Session1/dialog/wav/Ses01F_impro01.wav": "whole-dialog recording (dialog/wav), not a sentence",
        "Session2/sentences/wav/Ses01F_impro01/Ses01F_impro01_F009.wav": (
            "name says session 01 but the file is in Session2"
        ),
    }


def test_iemocap_subset_and_the_four_class_preset(iemocap_root):
    improvised = scan_corpus(CorpusSpec(name="iemocap", root=str(iemocap_root), subset="improvised"))
    assert len(improvised.utterances) == 4
    script = str(iemocap_root / "Session1/sentences/wav/Ses01M_script01_1/Ses01M_script01_1_F000.wav")
    assert {s.path: s.reason for s in improvised.skipped}[
        script
    ] == "scripted dialog, not in the subset improvised"
    scripted = scan_corpus(CorpusSpec(name="iemocap", root=str(iemocap_root), subset="scripted"))
    assert [u.label for u in scripted.utterances] == ["sad"]
    cfg = load_config(["data/iemocap"], [f"data.root={iemocap_root}"])
    data = build_dataset(cfg.data, check_audio=True)
    assert data.labels == ["neutral", "happy", "sad", "angry"]
    assert Counter(u.label for u in data.utterances) == {"neutral": 1, "happy": 1, "sad": 1, "angry": 1}
    assert any(s.reason.startswith("label 'frustrated' not in data.labels") for s in data.skipped)
    with pytest.raises(CorpusError, match="iemocap: subset 'both' must be one of improvised, scripted"):
        scan_corpus(CorpusSpec(name="iemocap", root=str(iemocap_root), subset="both"))
    with pytest.raises(CorpusError, match="ravdess: subset 'scripted' must be left unset"):
        scan_corpus(CorpusSpec(name="ravdess", root=str(iemocap_root), subset="scripted"))


def test_iemocap_synthetic_corpus_writes_label_files_and_merges_excited(tmp_path):
    root = synth(tmp_path, "iemocap")
    assert len(list(root.glob("Session*/dialog/EmoEvaluation/*.txt"))) == 4  # 2 sessions x 2 dialogs
    scan = scan_corpus(CorpusSpec(name="iemocap", root=str(root)))
    assert len(scan.utterances) == 4 * 4 * 3 and scan.skipped == []
    assert Counter(u.label for u in scan.utterances) == {
        "neutral": 12,
        "happy": 8,  # per speaker: items 0, 1 hap; item 2 exc
        "excited": 4,
        "sad": 12,
        "angry": 12,
    }
    assert {(u.speaker, u.session, u.gender) for u in scan.utterances} == {
        ("iemocap:Ses01M", "iemocap:Ses01", "m"),
        ("iemocap:Ses01F", "iemocap:Ses01", "f"),
        ("iemocap:Ses02M", "iemocap:Ses02", "m"),
        ("iemocap:Ses02F", "iemocap:Ses02", "f"),
    }
    improvised = scan_corpus(CorpusSpec(name="iemocap", root=str(root), subset="improvised"))
    assert len(improvised.utterances) == 4 * 4 * 2 and len(improvised.skipped) == 4 * 4


# -------------------------------------------------------------------------------------------- savee
def test_savee_flat_and_nested_names(tmp_path, wav_writer):
    root = tmp_path / "savee"
    wav_writer(root / "ALL/DC_a01.wav")
    wav_writer(root / "ALL/JE_sa02.wav")
    wav_writer(root / "AudioData/KL/su03.wav")
    wav_writer(root / "AudioData/JK/n30.wav")
    wav_writer(root / "AudioData/DC/a01.wav")  # the same recording as ALL/DC_a01.wav
    wav_writer(root / "ALL/XY_a01.wav")
    wav_writer(root / "ALL/DC_x01.wav")
    wav_writer(root / "ALL/DC-a01.wav")
    wav_writer(root / "AudioData/KL/info.wav")
    scan = scan_corpus(CorpusSpec(name="savee", root=str(root)))
    assert summary(scan) == {
        ("savee:DC_a01", "savee:DC", "angry", "m"),
        ("savee:JE_sa02", "savee:JE", "sad", "m"),
        ("savee:KL_su03", "savee:KL", "surprised", "m"),
        ("savee:JK_n30", "savee:JK", "neutral", "m"),
    }
    skipped = reasons(scan, root)
    assert skipped["AudioData/DC/a01.wav"].startswith("duplicate of")
    assert skipped["ALL/XY_a01.wav"] == "speaker XY is not a SAVEE speaker (DC, JE, JK, KL)"
    assert skipped["ALL/DC_x01.wav"].startswith("unknown emotion code x")
    assert "does not match the SAVEE pattern" in skipped["ALL/DC-a01.wav"]
    assert "does not match the SAVEE pattern" in skipped["AudioData/KL/info.wav"]
    assert len(skipped) == 5


def test_savee_synthetic_corpus_has_four_male_speakers(tmp_path):
    scan = scan_corpus(CorpusSpec(name="savee", root=str(synth(tmp_path, "savee"))))
    assert len(scan.utterances) == 4 * 4 * 3 and scan.skipped == []
    assert sorted({u.speaker for u in scan.utterances}) == ["savee:DC", "savee:JE", "savee:JK", "savee:KL"]


# ---------------------------------------------------------------------------------------------- esd
def test_esd_english_speakers_emotion_folders_and_skips(tmp_path, wav_writer):
    root = tmp_path / "esd"
    wav_writer(root / "0011/Angry/0011_000351.wav")
    wav_writer(root / "0012/Happy/train/0012_000701.wav")
    wav_writer(root / "0020/Surprise/test/0020_001401.wav")
    wav_writer(root / "0015/Neutral/0015_000001.wav")
    wav_writer(root / "0001/Angry/0001_000351.wav")
    wav_writer(root / "0011/Angry/0012_000352.wav")
    wav_writer(root / "0011/Bored/0011_000353.wav")
    wav_writer(root / "0011/Angry/x.wav")
    wav_writer(root / "0011_000354.wav")
    scan = scan_corpus(CorpusSpec(name="esd", root=str(root)))
    assert summary(scan) == {
        ("esd:0011_000351", "esd:0011", "angry", None),
        ("esd:0012_000701", "esd:0012", "happy", None),
        ("esd:0020_001401", "esd:0020", "surprised", None),
        ("esd:0015_000001", "esd:0015", "neutral", None),
    }
    assert reasons(scan, root) == {
        "0001/Angry/0001_000351.wav": "speaker 0001 is in ESD's Mandarin part (only 0011-0020 are English)",
        "0011/Angry/0012_000352.wav": "file of speaker 0012 inside speaker folder 0011",
        "0011/Bored/0011_000353.wav": (
            "unknown emotion folder Bored (expected Angry, Happy, Neutral, Sad, Surprise)"
        ),
        "0011/Angry/x.wav": "name does not match the ESD pattern 0011_000351",
        "0011_000354.wav": "not in a <speaker>/<Emotion>/ folder",
    }


def test_esd_synthetic_corpus_counts(tmp_path):
    scan = scan_corpus(CorpusSpec(name="esd", root=str(synth(tmp_path, "esd"))))
    assert len(scan.utterances) == 4 * 4 * 3 and scan.skipped == []
    assert sorted({u.speaker for u in scan.utterances}) == [f"esd:{n:04d}" for n in (11, 12, 13, 14)]


# ----------------------------------------------------------------------------------------- manifest
@pytest.fixture
def manifest(tmp_path, wav_writer) -> Path:
    root = tmp_path / "m"
    for name in ("one", "two", "four", "five", "six"):
        wav_writer(root / "a" / f"{name}.wav")
    outside = wav_writer(tmp_path / "elsewhere/three.wav")
    (root / "list.csv").write_text(
        "Path,Label,Speaker,Gender,Split\n"
        "a/one.wav,angry,spk1,m,train\n"
        "a/two.wav,Happy,spk2,female,test\n"
        f"{outside},sad,spk1,M,val\n"
        "missing.wav,sad,spk3,f,train\n"
        "a/four.wav,,spk3,f,train\n"
        "\n"
        "a/five.wav,sad,spk3,x,train\n"
        "a/six.wav,sad,spk3,f,holdout\n"
        "a/one.wav,angry,spk1,m,train\n"
    )
    return root / "list.csv"


def test_manifest_rows_become_utterances_and_bad_rows_are_reported(manifest):
    scan = scan_corpus(CorpusSpec(name="manifest", root=str(manifest)))
    got = {(u.id, u.speaker, u.label, u.gender, u.split) for u in scan.utterances}
    outside = (manifest.parent.parent / "elsewhere/three").as_posix()
    assert got == {
        ("manifest:a/one", "manifest:spk1", "angry", "m", "train"),
        ("manifest:a/two", "manifest:spk2", "happy", "f", "test"),
        (f"manifest:{outside}", "manifest:spk1", "sad", "m", "val"),
    }
    assert reasons(scan, manifest.parent) == {
        "missing.wav": "row 5: file does not exist",
        "list.csv:6": "row 6: empty label",
        "list.csv:8": "row 8: gender 'x' is not m, f, male or female",
        "list.csv:9": "row 9: split 'holdout' is not train, val or test",
        "a/one.wav": f"duplicate of {manifest.parent / 'a/one.wav'} (same utterance id manifest:a/one)",
    }


def test_manifest_tsv_ids_and_errors(tmp_path, wav_writer):
    wav_writer(tmp_path / "x.wav")
    tsv = tmp_path / "corpus.tsv"
    tsv.write_text("path\tlabel\tspeaker\tid\nx.wav\tfear\ts1\tclip-1\n")
    (u,) = scan_corpus(CorpusSpec(name="manifest", root=str(tsv))).utterances
    assert (u.id, u.label, u.speaker, u.gender) == ("manifest:clip-1", "fearful", "manifest:s1", None)
    (tmp_path / "bad.csv").write_text("file,label\nx.wav,sad\n")
    with pytest.raises(CorpusError, match=r"lacks column\(s\) path, speaker"):
        scan_corpus(CorpusSpec(name="manifest", root=str(tmp_path / "bad.csv")))
    with pytest.raises(CorpusError, match="is a folder; data.root must be the manifest file itself"):
        scan_corpus(CorpusSpec(name="manifest", root=str(tmp_path)))
    with pytest.raises(CorpusError, match="does not exist"):
        scan_corpus(CorpusSpec(name="manifest", root=str(tmp_path / "nope.csv")))
    with pytest.raises(CorpusError, match="no manifest given"):
        scan_corpus(CorpusSpec(name="manifest"))


def test_manifest_synthetic_corpus(tmp_path):
    root = synth(tmp_path, "manifest")
    scan = scan_corpus(CorpusSpec(name="manifest", root=str(root / "manifest.csv")))
    assert len(scan.utterances) == 4 * 4 * 3 and scan.skipped == []
    assert {u.gender for u in scan.utterances} == {"m", "f"}


# ------------------------------------------------------------------------------------ merge and CLI
def test_merging_every_new_corpus_keeps_speakers_distinct(tmp_path):
    specs = [
        CorpusSpec(name="emodb", root=str(synth(tmp_path, "emodb"))),
        CorpusSpec(name="iemocap", root=str(synth(tmp_path, "iemocap")), label_map={"excited": "happy"}),
        CorpusSpec(name="savee", root=str(synth(tmp_path, "savee"))),
        CorpusSpec(name="esd", root=str(synth(tmp_path, "esd"))),
        CorpusSpec(name="manifest", root=str(synth(tmp_path, "manifest") / "manifest.csv")),
    ]
    data = build_dataset(DataConfig(corpora=specs), check_audio=False)
    assert len(data.utterances) == 5 * 48 and data.labels == ["neutral", "happy", "sad", "angry"]
    assert len(data.speakers()) == 4 + 4 + 4 + 4 + 4
    assert Counter(u.corpus for u in data.utterances) == {c.name: 48 for c in specs}
    assert {u.session for u in data.utterances if u.corpus == "iemocap"} == {"iemocap:Ses01", "iemocap:Ses02"}


@pytest.mark.parametrize(
    "style, count",  # 4 speakers x the 6 default labels x 1; ESD has no fearful or disgust
    [("emodb", 24), ("iemocap", 24), ("savee", 24), ("esd", 16), ("manifest", 24)],
)
def test_data_synth_and_inspect_cli(tmp_path, capsys, style, count):
    from ser.cli import main

    out = tmp_path / style
    overrides = ["data.synthetic.speakers=4", "data.synthetic.per_label=1", "data.synthetic.duration=0.3"]
    assert main(["data", "synth", str(out), "--style", style, *overrides]) == 0
    root = out / "manifest.csv" if style == "manifest" else out
    capsys.readouterr()
    assert main(["data", "inspect", str(root), "--corpus", style, "--json", "--compact"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["speakers"] == 4 and report["skipped"] == []
    assert report["utterances"] == sum(report["labels"].values()) == count
    assert report["sessions"] == (2 if style == "iemocap" else 0)
