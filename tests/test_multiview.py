"""Fusion of a CNN with a second view (early, late) and the speaker adversary: packed rows, training through
train_fold on the synthetic corpus, the gradient reversal by hand, checkpoints, and one-line config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ser.cli import main
from ser.data.views import SPEAKER, SPECTROGRAM, VIEW, Layout
from ser.models.multiview import reverse_gradient

FUSION = ("model.time_pooling=stats", "data.features.normalize=speaker", "trainer.max_epochs=1")


def test_gradient_reversal_by_hand() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)  # the identity going forward
    (y * torch.tensor([2.0, 5.0, -1.0])).sum().backward()  # d/dx of sum(w * x) is w ...
    assert torch.allclose(x.grad, torch.tensor([-0.6, -1.5, 0.3]))  # ... coming back as -0.3 w


def test_layout_splits_and_joins_rows() -> None:
    layout = Layout(((SPECTROGRAM, (1, 2, 3)), (VIEW, (4,)), (SPEAKER, (1,))), n_speakers=3)
    rows = torch.arange(2 * layout.width, dtype=torch.float32).reshape(2, -1)
    parts = layout.split(rows)
    assert parts[SPECTROGRAM].shape == (2, 1, 2, 3) and parts[VIEW].shape == (2, 4)
    assert parts[SPEAKER][1, 0] == rows[1, -1] and torch.equal(layout.join(parts), rows)
    assert Layout.from_record(layout.to_record()) == layout


@pytest.mark.parametrize("mode", ["early", "late"])
def test_fusion_trains_through_train_fold_and_restores(tiny_cfg_factory, mode: str) -> None:
    from ser.data.prepared import prepare_data
    from ser.inference.checkpoint import read_checkpoint, restore_classifier
    from ser.report.predictions import read_predictions
    from ser.training.fit import fit_folds

    cfg = tiny_cfg_factory(*FUSION, f"model.fusion={mode}", f"trainer.run_name={mode}")
    prepared = prepare_data(cfg, progress=False)
    assert [name for name, _ in prepared.layout.parts] == [SPECTROGRAM, VIEW]
    assert prepared.layout.shape(VIEW) == (88,) and prepared.x.shape[1] == prepared.layout.width
    result = fit_folds(cfg.copy(), prepared=prepared)
    fold = result.metrics["folds"][0]
    assert 0.0 <= fold["test"]["uar"] <= 1.0 and fold["selection"]["epoch"] == 0
    ckpt = read_checkpoint(result.folds[0].checkpoint)
    assert ckpt.info["layout"] == prepared.layout.to_record()
    model = restore_classifier(ckpt)
    assert f"{mode} fusion with a view [88]" in model.net.describe()
    saved = read_predictions(result.run_dir / "fold_0" / "predictions.npz")
    rows = [prepared.utterance_ids.index(i) for i in saved.ids]
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(prepared.x[rows]))
        probs = torch.softmax(model(x), dim=-1)
        np.testing.assert_allclose(probs.numpy(), saved.probs, atol=1e-5)  # the tested model, restored
        if mode == "late":  # the average of the CNN's and the view model's probabilities, by hand
            net, parts = model.net, model.net.layout.split(model.frontend(x))
            cnn = torch.softmax(net.head(net.cnn(parts[SPECTROGRAM])), dim=-1)
            view = torch.softmax(net.view_model(parts[VIEW]), dim=-1)
            np.testing.assert_allclose(probs.numpy(), (0.5 * cnn + 0.5 * view).numpy(), atol=1e-5)
    assert saved.embeddings is not None and len(saved.embeddings) == len(rows)
    assert_predict_scores_like_the_test(cfg, result.folds[0].checkpoint, saved)


def assert_predict_scores_like_the_test(cfg, checkpoint, saved) -> None:
    """`ser predict` on the test speaker's audio files, given together as one speaker (training standardised
    each speaker over all their clips), gives the probabilities the fold's test wrote from the cache: the
    packed row (spectrogram, view, speaker column) is rebuilt from audio alone and standardised part by
    part."""
    from ser.data.dataset import build_dataset
    from ser.inference.checkpoint import read_checkpoint
    from ser.inference.predict import predict_paths

    by_id = {u.id: u for u in build_dataset(cfg.data, check_audio=False, progress=False).utterances}
    speaker = {by_id[i].speaker for i in saved.ids}
    assert len(speaker) == 1  # the tiny corpus's 4 folds each test one speaker
    mine = sorted(u.id for u in by_id.values() if u.speaker in speaker)
    # a window longer than any clip: one window per file, cropped like the training clip (not a slide)
    results = predict_paths(checkpoint, [by_id[i].path for i in mine], window=5.0, same_speaker=True)
    assert {len(r["windows"]) for r in results} == {1}
    labels = read_checkpoint(checkpoint).labels  # the order of saved.probs' columns
    got = {i: [r["probabilities"][label] for label in labels] for i, r in zip(mine, results)}
    np.testing.assert_allclose([got[i] for i in saved.ids], saved.probs, atol=2e-4)  # rounded to 4 places
    assert_live_runs_the_front_end_once_per_window(checkpoint)


def assert_live_runs_the_front_end_once_per_window(checkpoint) -> None:
    """`ser live` on a speaker-normalised packed model: the statistics so far and the model read the same
    features, computed once per window (an encoder view is the costly part), with the probabilities of
    computing them twice (update the speaker's statistics, then score the window)."""
    from ser.data.audio import normalize_wave
    from ser.inference.scorer import load_scorer
    from ser.inference.streaming import StreamingScorer

    scorer = load_scorer(checkpoint)
    assert scorer.speaker_normalized and scorer.layout is not None
    win = scorer.window_samples
    wave = np.random.default_rng(5).normal(0.0, 0.1, 3 * win).astype(np.float32)
    reference, stats = [], scorer.new_stats()
    for k in range(3):
        window = normalize_wave(wave[k * win : (k + 1) * win], scorer.audio_normalize)[None, :]
        stats.update(scorer.features(window))
        reference.append(scorer.probabilities(window, stats)[0])
    calls = []
    features = scorer.features
    scorer.features = lambda windows: calls.append(len(windows)) or features(windows)
    results = StreamingScorer(scorer, hop=win / scorer.sample_rate, smoothing=1.0).push(wave)
    assert calls == [1, 1, 1] and len(results) == 3
    got = [[r.probabilities[label] for label in scorer.labels] for r in results]
    np.testing.assert_allclose(got, reference, atol=1e-6)


def test_late_fusion_trains_each_model_on_its_own_loss(tiny_cfg_factory) -> None:
    from ser.data.datamodule import SERDataModule
    from ser.data.prepared import prepare_data
    from ser.training.parts import build_fold_model

    cfg = tiny_cfg_factory(*FUSION, "model.fusion=late", "model.fusion_view=egemaps", "model.dropout=none")
    prepared = prepare_data(cfg, progress=False)
    model, _ = build_fold_model(cfg, prepared, SERDataModule(cfg, prepared, 0))
    model.train()  # batch norm on batch statistics, in both passes
    x, y = torch.from_numpy(np.asarray(prepared.x[:8])), torch.from_numpy(prepared.y[:8])
    loss, parts = model.training_objective((x, y))
    net = model.net
    inputs = net.layout.split(model.frontend(x))
    expected = torch.nn.functional.cross_entropy(net.head(net.cnn(inputs[SPECTROGRAM])), y)
    expected = expected + torch.nn.functional.cross_entropy(net.view_model(inputs[VIEW]), y)
    assert torch.allclose(loss, expected, atol=1e-5)  # the sum of the two models' own losses
    fused = torch.nn.functional.cross_entropy(parts["logits"], y)  # not the averaged model's loss
    assert not torch.allclose(loss, fused, atol=1e-3)


def test_speaker_adversary_trains_and_reverses_into_the_cnn(tiny_cfg_factory) -> None:
    from ser.data.datamodule import SERDataModule
    from ser.data.prepared import prepare_data
    from ser.training.fit import fit_folds
    from ser.training.parts import build_fold_model

    cfg = tiny_cfg_factory(*FUSION, "model.adversary_weight=0.5", "trainer.run_name=adversary")
    prepared = prepare_data(cfg, progress=False)
    layout = prepared.layout
    assert layout.n_speakers == 4 and [n for n, _ in layout.parts] == [SPECTROGRAM, SPEAKER]
    speakers = sorted(set(prepared.speakers))
    np.testing.assert_array_equal(
        layout.split(prepared.x)[SPEAKER][:, 0], [speakers.index(s) for s in prepared.speakers]
    )
    model, _ = build_fold_model(cfg, prepared, SERDataModule(cfg, prepared, 0))
    model.train()
    x, y = torch.from_numpy(np.asarray(prepared.x[:16])), torch.from_numpy(prepared.y[:16])
    grads = {}
    for weight in (0.5, -1.0):  # -1: no reversal, the plain gradient of the speaker loss
        model.net.adversary_weight = weight
        model.zero_grad()
        _, parts = model.training_objective((x, y))
        parts["adversary"].backward()  # the speaker loss alone
        grads[weight] = [p.grad.clone() for p in model.net.cnn.parameters() if p.grad is not None]
        adversary = [p.grad.clone() for p in model.net.adversary.parameters()]
    for reversed_, plain in zip(grads[0.5], grads[-1.0], strict=True):
        torch.testing.assert_close(reversed_, -0.5 * plain, atol=1e-6, rtol=1e-4)
    assert all(g.abs().sum() > 0 for g in adversary)  # the speaker classifier itself learns
    result = fit_folds(cfg.copy(), prepared=prepared)
    assert 0.0 <= result.metrics["folds"][0]["test"]["uar"] <= 1.0
    logged = (result.run_dir / "fold_0" / "logs" / "metrics.csv").read_text()
    assert "train/adversary_loss" in logged
    from ser.report.predictions import read_predictions

    saved = read_predictions(result.run_dir / "fold_0" / "predictions.npz")  # a zero speaker column predicts
    assert_predict_scores_like_the_test(cfg, result.folds[0].checkpoint, saved)


@pytest.mark.parametrize("family", ["svm", "feature_mlp"])
def test_vector_families_fuse_early_by_concatenation(tiny_cfg_factory, family: str) -> None:
    from ser.data.prepared import prepare_data
    from ser.data.views import VECTOR
    from ser.training.fit import fit_folds

    cfg = tiny_cfg_factory(
        f"model.name={family}",
        "data.features.kind=egemaps",
        "data.features.normalize=speaker",
        "model.fusion=early",
        "model.fusion_view=gemaps",
        f"trainer.run_name=concat_{family}",
    )
    prepared = prepare_data(cfg, progress=False)
    assert prepared.layout.parts == ((VECTOR, (88,)), (VIEW, (62,))) and prepared.x.shape[1] == 150
    rows = np.asarray(prepared.speakers) == prepared.speakers[0]  # both views standardised per speaker
    np.testing.assert_allclose(prepared.x[rows].mean(axis=0), 0.0, atol=1e-4)
    result = fit_folds(cfg.copy(), prepared=prepared)
    assert 0.0 <= result.metrics["folds"][0]["test"]["uar"] <= 1.0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fit", "model.name=svm", "model.fusion=late"], "early fusion (model.fusion=early) works"),
        (["fit", "model.name=svm", "model.adversary_weight=0.1"], "model.adversary_weight"),
        (["fit", "model.fusion=erly"], "did you mean 'early'"),
        (["fit", "model.fusion=late", "model.fusion_weight=1.5"], "model.fusion_weight"),
        (["fit", "model.adversary_weight=-1"], "model.adversary_weight"),
        (["fit", "model.adversary_weight=1", "data.augment.mixup_alpha=0.2"], "data.augment.mixup_alpha"),
        (["fit", "model.fusion=early", "model.fusion_view=encoder"], "model.encoder"),
        (["fit", "model.fusion=early", "data.augment.noise_p=0.5"], "data.augment.noise_p"),
        (["fit", "model.fusion=early", "model.ensemble=2"], "model.ensemble"),
    ],
)
def test_bad_fusion_configs_are_one_line(tiny_env, argv, needle, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().startswith("ser: error:") and needle in err, err


def test_sweep_trials_share_packed_rows_only_when_the_rows_are_the_same(tiny_cfg_factory) -> None:
    from ser.sweep.trials import prepared_key

    def key(*overrides: str) -> str:
        return prepared_key(tiny_cfg_factory(*overrides))

    early = key("model.fusion=early")
    assert early == key("model.fusion=late", "model.fusion_weight=0.3")  # same rows, other heads
    others = {key(), key("model.fusion=early", "model.fusion_view=gemaps"), key("model.adversary_weight=0.1")}
    assert len(others | {early}) == 4


@pytest.mark.slow
def test_a_frozen_encoder_is_a_fusion_view(tiny_cfg_factory, tmp_path) -> None:
    from ser.data.prepared import prepare_data
    from ser.training.fit import fit_folds
    from tests.helpers.encoders import N_STATES, save_tiny_encoder

    pytest.importorskip("transformers")
    folder = save_tiny_encoder("wav2vec2", tmp_path / "wav2vec2")
    cfg = tiny_cfg_factory(
        *FUSION,
        "model.fusion=early",
        "model.fusion_view=encoder",
        f"model.encoder={folder}",
        "trainer.run_name=encoder_view",
    )
    prepared = prepare_data(cfg, progress=False)
    n_states, dim = prepared.layout.shape(VIEW)  # per-layer time means, mixed by learned layer weights
    assert n_states == N_STATES and dim > 1
    result = fit_folds(cfg.copy(), prepared=prepared)
    assert 0.0 <= result.metrics["folds"][0]["test"]["uar"] <= 1.0


def test_a_vector_family_reads_one_encoder_state(tiny_cfg_factory, tmp_path) -> None:
    pytest.importorskip("transformers")
    from ser.config import ConfigError
    from ser.data.prepared import prepare_data
    from ser.data.views import VECTOR
    from tests.helpers.encoders import save_tiny_encoder

    folder = save_tiny_encoder("wav2vec2", tmp_path / "wav2vec2")
    base = ("model.name=svm", "data.features.kind=egemaps", "model.fusion=early", "model.fusion_view=encoder")
    # the default model.layer=weighted: an SVM has no layer weights to learn
    with pytest.raises(ConfigError, match="model.layer.*learns no layer weights"):
        prepare_data(tiny_cfg_factory(*base, f"model.encoder={folder}"), progress=False)
    prepared = prepare_data(tiny_cfg_factory(*base, f"model.encoder={folder}", "model.layer=last"), False)
    assert prepared.layout.parts[0] == (VECTOR, (88,)) and len(prepared.layout.shape(VIEW)) == 1


def test_predict_rebuilds_an_efficientat_view_at_the_encoder_rate(tiny_cfg_factory, tmp_path) -> None:
    """The recipe's shape: a 16 kHz CNN fused late with a 32 kHz AudioSet encoder. The scorer resamples each
    16 kHz window to the encoder's rate: its row has the cached log-mel exactly and the cached view within
    the cache's float16 step (a tiny random encoder's states barely vary between clips, so compare before
    the speaker standardisation, which would magnify that step); `ser predict` labels a file; another file
    in model.encoder's place is refused in one line."""
    from ser.data.audio import fix_length, load_audio
    from ser.data.dataset import build_dataset
    from ser.data.prepared import prepare_data
    from ser.inference.checkpoint import CheckpointError
    from ser.inference.predict import predict_paths
    from ser.inference.scorer import load_scorer
    from ser.training.fit import fit_folds
    from tests.helpers.audioset import write_tiny_efficientat

    encoder = write_tiny_efficientat(tmp_path / "mn01_as.pt")
    cfg = tiny_cfg_factory(
        *FUSION,
        "model.fusion=late",
        "model.fusion_view=encoder",
        f"model.encoder=efficientat:{encoder}",
        "data.features.normalize=none",
        "trainer.run_name=efficientat_view",
    )
    prepared = prepare_data(cfg, progress=False)
    assert len(prepared.layout.shape(VIEW)) == 2  # per-layer means at 32 kHz beside the 16 kHz log-mel
    result = fit_folds(cfg.copy(), prepared=prepared)
    checkpoint = result.folds[0].checkpoint
    scorer = load_scorer(checkpoint)
    by_id = {u.id: u for u in build_dataset(cfg.data, check_audio=False, progress=False).utterances}
    ids = prepared.utterance_ids[:6]
    windows = np.stack(
        [fix_length(load_audio(by_id[i].path, 16000, normalize=scorer.audio_normalize), 16000) for i in ids]
    )
    got = scorer.layout.split(scorer.features(windows).numpy())
    cached = scorer.layout.split(np.asarray(prepared.x[: len(ids)]))
    np.testing.assert_array_equal(got[SPECTROGRAM], cached[SPECTROGRAM])
    np.testing.assert_allclose(got[VIEW], cached[VIEW], rtol=2**-10, atol=1e-6)  # one float16 step
    assert not np.array_equal(got[VIEW], np.zeros_like(got[VIEW]))
    result = predict_paths(checkpoint, [by_id[ids[0]].path])[0]
    assert result["label"] in scorer.labels and abs(sum(result["probabilities"].values()) - 1) < 1e-3
    write_tiny_efficientat(encoder, seed=1)  # other weights where the view's encoder was
    with pytest.raises(CheckpointError, match="fusion view needs its encoder.*model.encoder"):
        load_scorer(checkpoint)
