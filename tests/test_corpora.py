"""Corpus adapters, the label vocabulary and corpus merging, on tiny corpora written into tmp_path."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.config import ConfigError, CorpusSpec, DataConfig, SyntheticConfig
from ser.data.corpora import CORPORA, base, scan_corpus
from ser.data.dataset import build_dataset
from ser.data.labels import CANONICAL_LABELS, canonical_label, sort_labels
from ser.data.types import CorpusError

HAS_SYNTHETIC = importlib.util.find_spec("ser.data.synthetic") is not None


def reasons(scan, root: Path) -> dict[str, str]:
    return {str(Path(s.path).relative_to(root)): s.reason for s in scan.skipped}


# ------------------------------------------------------------------------------------------------ labels


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ANG", "angry"),
        ("dis", "disgust"),
        ("FEA", "fearful"),
        ("Fear", "fearful"),
        ("HAP", "happy"),
        ("NEU", "neutral"),
        ("SAD", "sad"),
        ("SUR", "surprised"),
        ("CAL", "calm"),
        ("ps", "surprised"),
        ("Pleasant_Surprise", "surprised"),
        ("pleasant surprised", "surprised"),
        ("surprise", "surprised"),
        ("disgust", "disgust"),
        ("boredom", None),
    ],
)
def test_canonical_label_aliases(name, expected):
    assert canonical_label(name) == expected


def test_sort_labels_puts_canonical_order_first_then_others_alphabetically():
    assert sort_labels(["zeal", "sad", "boredom", "neutral", "sad", "surprised"]) == [
        "neutral",
        "sad",
        "surprised",
        "boredom",
        "zeal",
    ]
    assert CANONICAL_LABELS[:3] == ("neutral", "calm", "happy")


# ------------------------------------------------------------------------------------------------ ravdess


def write_bad_audio(root: Path, names: dict[str, str], writer) -> None:
    """Files with valid corpus names but unusable content, keyed by kind."""
    (root / names["text"]).parent.mkdir(parents=True, exist_ok=True)
    (root / names["text"]).write_text("not audio at all\n" * 10)
    (root / names["empty"]).write_bytes(b"")
    good = writer(root / names["truncated"], seconds=0.4, subtype="PCM_16").read_bytes()
    (root / names["truncated"]).write_bytes(good[: len(good) - 2001])
    writer(root / names["zero"], seconds=0.0)
    writer(root / names["silent"], kind="silence")
    nan = np.full(1600, 0.1, np.float32)
    nan[5] = np.nan
    sf.write(str(root / names["nan"]), nan, 16000, subtype="FLOAT")


RAVDESS_BAD = {
    "text": "Actor_03/03-01-03-01-01-01-03.wav",
    "empty": "Actor_03/03-01-03-01-01-02-03.wav",
    "truncated": "Actor_03/03-01-03-01-02-01-03.wav",
    "zero": "Actor_03/03-01-03-01-02-02-03.wav",
    "silent": "Actor_03/03-01-04-01-01-01-03.wav",
    "nan": "Actor_03/03-01-04-01-01-02-03.wav",
}
AUDIO_REASONS = {
    "text": "unreadable",
    "empty": "empty file (0 bytes)",
    "truncated": "truncated",
    "zero": "zero frames",
    "silent": "silent (peak 0",
    "nan": "NaN",
}


@pytest.fixture
def ravdess_root(tmp_path, wav_writer) -> Path:
    root = tmp_path / "ravdess"
    wav_writer(root / "Actor_01/03-01-05-01-02-01-01.wav")  # angry, male
    wav_writer(root / "Actor_01/03-01-02-02-01-01-01.WAV", channels=2)  # calm, upper-case extension
    wav_writer(root / "Actor_02/03-01-01-01-01-01-02.flac", format="FLAC")  # neutral, female
    wav_writer(root / "extra/deeper/03-01-08-02-02-02-12.wav", sample_rate=48000)  # surprised, anywhere
    wav_writer(root / "Actor_01/03-02-05-01-01-01-01.wav")  # song
    wav_writer(root / "Actor_01/01-01-05-01-01-01-01.wav")  # full AV modality
    wav_writer(root / "Actor_01/03-01-09-01-01-01-01.wav")  # unknown emotion
    wav_writer(root / "Actor_01/notes_take2.wav")  # bad name
    wav_writer(root / "copy/Actor_01/03-01-05-01-02-01-01.wav")  # duplicate utterance id
    (root / "README.txt").write_text("not audio, ignored")
    write_bad_audio(root, RAVDESS_BAD, wav_writer)
    return root


def test_ravdess_parses_speakers_labels_genders(ravdess_root):
    scan = scan_corpus(CorpusSpec(name="ravdess", root=str(ravdess_root)))
    by_id = {u.id: u for u in scan.utterances}
    assert set(by_id) == {
        "ravdess:03-01-05-01-02-01-01",
        "ravdess:03-01-02-02-01-01-01",
        "ravdess:03-01-01-01-01-01-02",
        "ravdess:03-01-08-02-02-02-12",
    }
    angry = by_id["ravdess:03-01-05-01-02-01-01"]
    assert (angry.label, angry.speaker, angry.gender, angry.corpus) == ("angry", "ravdess:01", "m", "ravdess")
    assert angry.path == str(ravdess_root / "Actor_01/03-01-05-01-02-01-01.wav")
    assert Path(angry.path).is_absolute() and isinstance(angry.path, str)
    assert by_id["ravdess:03-01-02-02-01-01-01"].label == "calm"
    neutral = by_id["ravdess:03-01-01-01-01-01-02"]
    assert (neutral.label, neutral.speaker, neutral.gender) == ("neutral", "ravdess:02", "f")
    surprised = by_id["ravdess:03-01-08-02-02-02-12"]
    assert (surprised.label, surprised.speaker, surprised.gender) == ("surprised", "ravdess:12", "f")


def test_ravdess_reports_every_unused_audio_file_with_its_reason(ravdess_root):
    scan = scan_corpus(CorpusSpec(name="ravdess", root=str(ravdess_root)))
    skipped = reasons(scan, ravdess_root)
    assert "song (vocal channel 02)" in skipped["Actor_01/03-02-05-01-01-01-01.wav"]
    assert "video file modality 01" in skipped["Actor_01/01-01-05-01-01-01-01.wav"]
    assert skipped["Actor_01/03-01-09-01-01-01-01.wav"] == "unknown emotion code 09"
    assert "does not match the RAVDESS pattern" in skipped["Actor_01/notes_take2.wav"]
    assert "duplicate of" in skipped["copy/Actor_01/03-01-05-01-02-01-01.wav"]
    for kind, name in RAVDESS_BAD.items():
        assert AUDIO_REASONS[kind] in skipped[name], (kind, skipped[name])
    assert len(skipped) == 5 + len(RAVDESS_BAD)  # README.txt is not audio and not listed


def test_check_audio_false_only_parses_names(ravdess_root):
    scan = scan_corpus(CorpusSpec(name="ravdess", root=str(ravdess_root)), check_audio=False)
    paths = {u.path for u in scan.utterances}
    assert str(ravdess_root / RAVDESS_BAD["empty"]) in paths
    assert len(scan.utterances) == 4 + len(RAVDESS_BAD)


def test_progress_bar_goes_to_stderr(ravdess_root, capsys, monkeypatch):
    monkeypatch.setattr(base, "PROGRESS_MIN_FILES", 1)
    scan_corpus(CorpusSpec(name="ravdess", root=str(ravdess_root)), progress=True)
    captured = capsys.readouterr()
    assert "checking ravdess audio" in captured.err and captured.out == ""


@pytest.mark.parametrize("name", sorted(set(CORPORA) - {"synthetic", "manifest"}))  # manifest: a file
def test_root_problems_are_corpus_errors(tmp_path, wav_writer, name):
    with pytest.raises(CorpusError, match="does not exist"):
        scan_corpus(CorpusSpec(name=name, root=str(tmp_path / "missing")))
    a_file = wav_writer(tmp_path / "file.wav")
    with pytest.raises(CorpusError, match="is not a directory"):
        scan_corpus(CorpusSpec(name=name, root=str(a_file)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match=f"{name}: no usable files matching .* under .*empty"):
        scan_corpus(CorpusSpec(name=name, root=str(tmp_path / "empty")))
    with pytest.raises(CorpusError, match="no root folder"):
        scan_corpus(CorpusSpec(name=name, root=None))


def test_root_with_only_unusable_files_names_them(tmp_path, wav_writer):
    wav_writer(tmp_path / "Actor_01/03-01-05-01-02-01-01.wav", kind="silence")
    wav_writer(tmp_path / "Actor_01/hello.wav")
    with pytest.raises(CorpusError) as info:
        scan_corpus(CorpusSpec(name="ravdess", root=str(tmp_path)))
    message = str(info.value)
    assert "Actor_XX/03-01-EE-II-SS-RR-AA.wav" in message and "all 2 audio files were skipped" in message
    assert "silent" in message and "hello.wav" in message


def test_unknown_corpus_name_lists_known_ones():
    with pytest.raises(
        ConfigError, match="unknown corpus 'aibo'.*crema_d, emodb, esd, folder, iemocap, manifest, ravdess"
    ):
        scan_corpus(CorpusSpec(name="aibo", root="/tmp"))


# ------------------------------------------------------------------------------------------------ crema_d


@pytest.fixture
def crema_root(tmp_path, wav_writer) -> Path:
    root = tmp_path / "crema"
    wav_writer(root / "AudioWAV/1001_DFA_ANG_XX.wav")
    wav_writer(root / "AudioWAV/1002_IEO_HAP_HI.wav")
    wav_writer(root / "AudioWAV/1091_TIE_FEA_LO.wav")
    wav_writer(root / "1003_IWW_NEU_X.wav")  # directly under root
    wav_writer(root / "AudioWAV/1001_DFA_XYZ_XX.wav")  # unknown emotion
    wav_writer(root / "AudioWAV/1001_DFA_SAD_QQ.wav")  # unknown level
    wav_writer(root / "AudioWAV/1001-DFA-SAD-XX.wav")  # bad name
    (root / "AudioWAV/1076_MTI_SAD_XX.wav").write_bytes(b"")  # empty, as in the real corpus
    return root


def test_crema_d_parses_speakers_labels_and_skips(crema_root):
    scan = scan_corpus(CorpusSpec(name="crema_d", root=str(crema_root)))
    got = {(u.id, u.speaker, u.label, u.gender) for u in scan.utterances}
    assert got == {
        ("crema_d:1001_DFA_ANG_XX", "crema_d:1001", "angry", None),
        ("crema_d:1002_IEO_HAP_HI", "crema_d:1002", "happy", None),
        ("crema_d:1091_TIE_FEA_LO", "crema_d:1091", "fearful", None),
        ("crema_d:1003_IWW_NEU_X", "crema_d:1003", "neutral", None),
    }
    skipped = reasons(scan, crema_root)
    assert skipped["AudioWAV/1001_DFA_XYZ_XX.wav"] == "unknown emotion code XYZ"
    assert "unknown emotion level QQ" in skipped["AudioWAV/1001_DFA_SAD_QQ.wav"]
    assert "does not match the CREMA-D pattern" in skipped["AudioWAV/1001-DFA-SAD-XX.wav"]
    assert skipped["AudioWAV/1076_MTI_SAD_XX.wav"] == "empty file (0 bytes)"
    assert len(skipped) == 4


def test_crema_d_genders_from_demographics(crema_root):
    (crema_root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n1003,21,Female,Asian,Not Hispanic\n"
    )
    scan = scan_corpus(CorpusSpec(name="crema_d", root=str(crema_root)))
    genders = {u.speaker: u.gender for u in scan.utterances}
    assert genders == {"crema_d:1001": "m", "crema_d:1002": "f", "crema_d:1003": "f", "crema_d:1091": None}
    assert any("1091" in w and "VideoDemographics.csv" in w for w in scan.warnings)


# ------------------------------------------------------------------------------------------------ tess


def test_tess_label_comes_from_file_name_not_folder(tmp_path, wav_writer):
    root = tmp_path / "tess"
    wav_writer(root / "OAF_angry/OAF_back_angry.wav")
    wav_writer(root / "OAF_Fear/OAF_back_fear.wav")
    wav_writer(root / "YAF_pleasant_surprised/YAF_back_ps.wav")
    wav_writer(root / "OAF_Pleasant_surprise/OAF_bean_ps.wav")
    wav_writer(root / "YAF_neutral/YAF_dog_sad.wav")  # misfiled: the name says sad
    wav_writer(root / "OAF_neutral/OA_bite_neutral.wav")  # a known short speaker prefix
    wav_writer(root / "OAF_bored/OAF_back_bored.wav")
    wav_writer(root / "OAF_angry/OAF.wav")
    scan = scan_corpus(CorpusSpec(name="tess", root=str(root)))
    got = {(u.id, u.speaker, u.label, u.gender) for u in scan.utterances}
    assert got == {
        ("tess:OAF_back_angry", "tess:OAF", "angry", "f"),
        ("tess:OAF_back_fearful", "tess:OAF", "fearful", "f"),
        ("tess:YAF_back_surprised", "tess:YAF", "surprised", "f"),
        ("tess:OAF_bean_surprised", "tess:OAF", "surprised", "f"),
        ("tess:YAF_dog_sad", "tess:YAF", "sad", "f"),
        ("tess:OAF_bite_neutral", "tess:OAF", "neutral", "f"),
    }
    skipped = reasons(scan, root)
    assert skipped["OAF_bored/OAF_back_bored.wav"] == "unknown emotion 'bored' in the file name"
    assert "does not match the TESS pattern" in skipped["OAF_angry/OAF.wav"]


# ------------------------------------------------------------------------------------------------ folder

REGEX = r"^(?P<speaker>spk\d+)_(?P<gender>male|female)_"


@pytest.fixture
def folder_root(tmp_path, wav_writer) -> Path:
    root = tmp_path / "folder"
    wav_writer(root / "Angry/spk1_male_001.wav")
    wav_writer(root / "angry/spk2_female_001.flac", format="FLAC")
    wav_writer(root / "fear/spk1_male_002.wav")
    wav_writer(root / "fear/nested/spk2_female_003.wav")
    wav_writer(root / "boredom/spk1_male_003.wav")
    wav_writer(root / "happy/unknown_speaker.wav")
    wav_writer(root / "loose.wav")
    return root


def test_folder_speakers_from_regex(folder_root):
    scan = scan_corpus(CorpusSpec(name="folder", root=str(folder_root), speaker_regex=REGEX))
    got = {(u.id, u.speaker, u.label, u.gender) for u in scan.utterances}
    assert got == {
        ("folder:angry/spk1_male_001", "folder:spk1", "angry", "m"),
        ("folder:angry/spk2_female_001", "folder:spk2", "angry", "f"),
        ("folder:fearful/spk1_male_002", "folder:spk1", "fearful", "m"),
        ("folder:fearful/nested/spk2_female_003", "folder:spk2", "fearful", "f"),
    }
    skipped = reasons(scan, folder_root)
    assert skipped["boredom/spk1_male_003.wav"] == "unknown emotion folder boredom"
    assert "does not match speaker_regex" in skipped["happy/unknown_speaker.wav"]
    assert "not inside an emotion folder" in skipped["loose.wav"]
    assert scan.warnings == []


def test_links_never_relabel_clips(tmp_path, wav_writer):
    """`happy/tosad -> ../sad` would give sad clips the label happy (and make sad vanish): a directory
    link inside a label folder is not followed, a file linked twice is used once, both are reported;
    a label folder that is itself a link (a corpus assembled from links) is read."""
    root = tmp_path / "links"
    wav_writer(root / "sad/spk1_male_001.wav")
    wav_writer(root / "happy/spk1_male_002.wav")
    wav_writer(tmp_path / "elsewhere/angry/spk2_female_001.wav")
    (root / "happy" / "tosad").symlink_to(root / "sad")
    (root / "angry").symlink_to(tmp_path / "elsewhere" / "angry")
    (root / "happy" / "copy.wav").symlink_to(root / "sad" / "spk1_male_001.wav")
    scan = scan_corpus(CorpusSpec(name="folder", root=str(root), speaker_regex=REGEX))
    assert sorted((u.label, Path(u.path).name) for u in scan.utterances) == [
        ("angry", "spk2_female_001.wav"),
        ("happy", "spk1_male_002.wav"),
        ("sad", "spk1_male_001.wav"),
    ]
    skipped = reasons(scan, root)
    assert "not followed" in skipped["happy/tosad"]
    assert "same file as" in skipped["happy/copy.wav"]


def test_folder_label_map_admits_a_corpus_specific_folder(folder_root):
    spec = CorpusSpec(
        name="folder", root=str(folder_root), speaker_regex=REGEX, label_map={"boredom": "calm"}
    )
    labels = {u.label for u in scan_corpus(spec).utterances}
    assert "boredom" in labels  # the adapter keeps the raw name; build_dataset maps it


def test_folder_without_regex_makes_each_file_a_speaker_and_warns(folder_root):
    scan = scan_corpus(CorpusSpec(name="folder", root=str(folder_root)))
    assert len({u.speaker for u in scan.utterances}) == len(scan.utterances) == 5
    assert all(u.gender is None for u in scan.utterances)
    assert any("speaker-independent" in w for w in scan.warnings)


@pytest.mark.parametrize("regex, message", [("(?P<speaker", "not a valid regex"), (r"^(\w+)_", "speaker")])
def test_folder_bad_regex_is_a_corpus_error(folder_root, regex, message):
    with pytest.raises(CorpusError, match=message):
        scan_corpus(CorpusSpec(name="folder", root=str(folder_root), speaker_regex=regex))


# ------------------------------------------------------------------------------------------------ synthetic

SMALL = SyntheticConfig(speakers=4, per_label=2, labels=["neutral", "happy", "sad"], duration=0.4)


@pytest.mark.skipif(not HAS_SYNTHETIC, reason="ser.data.synthetic is not importable yet")
def test_synthetic_adapter_materialises_and_reads_folder_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE", str(tmp_path / "cache"))
    scan = scan_corpus(CorpusSpec(name="synthetic"), synthetic=SMALL)
    assert len(scan.utterances) == 4 * 3 * 2 and scan.skipped == [] and scan.warnings == []
    assert {u.label for u in scan.utterances} == {"neutral", "happy", "sad"}
    speakers = {u.speaker: u.gender for u in scan.utterances}
    assert len(speakers) == 4 and all(s.startswith("synthetic:") for s in speakers)
    assert set(speakers.values()) <= {"m", "f"} and len(set(speakers.values())) == 2
    assert all(Path(u.path).is_relative_to(tmp_path / "cache") for u in scan.utterances)


@pytest.mark.skipif(not HAS_SYNTHETIC, reason="ser.data.synthetic is not importable yet")
@pytest.mark.parametrize("style, count", [("ravdess", 24), ("crema_d", 24), ("tess", 12)])
def test_real_corpus_adapters_read_synthetic_corpora_in_their_naming(tmp_path, style, count):
    from ser.data.synthetic import write_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tess naming has two speakers, not four
        write_corpus(tmp_path, style, SMALL)
    scan = scan_corpus(CorpusSpec(name=style, root=str(tmp_path)))
    assert len(scan.utterances) == count and scan.skipped == []
    assert {u.label for u in scan.utterances} == {"neutral", "happy", "sad"}
    assert all(u.gender in ("m", "f") for u in scan.utterances)


# ------------------------------------------------------------------------------------------------ merging


def test_merging_keeps_speakers_distinct_and_applies_label_maps(ravdess_root, crema_root):
    cfg = DataConfig(
        corpora=[
            CorpusSpec(name="ravdess", root=str(ravdess_root), label_map={"surprised": "happy"}),
            CorpusSpec(name="crema_d", root=str(crema_root)),
        ],
        label_map={"calm": "neutral"},
    )
    data = build_dataset(cfg)
    assert data.labels == ["neutral", "happy", "angry", "fearful"]
    assert len(data.utterances) == 8
    assert "ravdess:01" in data.speakers() and "crema_d:1001" in data.speakers()
    by_id = {u.id: u for u in data.utterances}
    assert by_id["ravdess:03-01-02-02-01-01-01"].label == "neutral"  # calm -> neutral (global map)
    assert by_id["ravdess:03-01-08-02-02-02-12"].label == "happy"  # corpus map
    assert data.label_index(by_id["crema_d:1091_TIE_FEA_LO"]) == 3
    assert len(data.skipped) == 5 + len(RAVDESS_BAD) + 4
    assert any(w == "corpus ravdess has no utterances labelled fearful" for w in data.warnings)


def test_same_adapter_twice_gets_distinct_speakers(folder_root, tmp_path, wav_writer):
    other = tmp_path / "other"
    wav_writer(other / "angry/spk1_male_009.wav")
    cfg = DataConfig(
        corpora=[
            CorpusSpec(name="folder", root=str(folder_root), speaker_regex=REGEX),
            CorpusSpec(name="folder", root=str(other), speaker_regex=REGEX),
        ]
    )
    data = build_dataset(cfg)
    assert data.speakers() == ["folder#1:spk1", "folder#1:spk2", "folder#2:spk1"]
    assert len({u.id for u in data.utterances}) == len(data.utterances) == 5


def test_labels_outside_data_labels_are_skipped_with_reason_and_absent_ones_warned(crema_root):
    cfg = DataConfig(corpus="crema_d", root=str(crema_root), labels=["angry", "Happy", "surprise"])
    data = build_dataset(cfg)
    assert data.labels == ["angry", "happy", "surprised"]
    assert sorted(u.label for u in data.utterances) == ["angry", "happy"]
    outside = [s for s in data.skipped if "not in data.labels" in s.reason]
    assert {Path(s.path).name for s in outside} == {"1091_TIE_FEA_LO.wav", "1003_IWW_NEU_X.wav"}
    assert any("label 'fearful' not in data.labels" in s.reason for s in outside)
    assert any("surprised" in w and "no utterances in any corpus" in w for w in data.warnings)


def test_no_usable_utterance_after_label_filter_is_a_corpus_error(crema_root):
    with pytest.raises(CorpusError, match="no usable utterances"):
        build_dataset(DataConfig(corpus="crema_d", root=str(crema_root), labels=["calm"]))


def test_build_dataset_accepts_an_omegaconf_node(crema_root):
    from omegaconf import OmegaConf

    spec = {"name": "crema_d", "root": str(crema_root), "label_map": {"neutral": "calm"}}
    node = OmegaConf.merge(OmegaConf.structured(DataConfig), {"corpora": [spec]})
    data = build_dataset(node)
    assert data.labels == ["calm", "happy", "angry", "fearful"]


@pytest.mark.skipif(not HAS_SYNTHETIC, reason="ser.data.synthetic is not importable yet")
def test_default_data_config_builds_the_synthetic_corpus(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    monkeypatch.setenv("SER_CACHE", str(tmp_path))
    node = OmegaConf.structured(DataConfig(synthetic=SMALL))
    data = build_dataset(node)
    assert data.labels == ["neutral", "happy", "sad"] and len(data.speakers()) == 4
    assert len(data.utterances) == 24 and data.skipped == [] and data.warnings == []
