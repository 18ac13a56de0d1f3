"""The ssl family end to end, offline, with a tiny random wav2vec2 saved in tmp_path: config checks, states
cached once and reused (another encoder or revision invalidates them), a frozen head learning the
synthetic corpus, fine-tuning with the feature encoder frozen, every command scoring both modes, sweeps
sharing states, and the one-line errors when an encoder is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.config import ConfigError, load_config
from tests.conftest import TINY_OVERRIDES, write_wav
from tests.helpers.encoders import N_STATES, fake_hub_cache, save_tiny_encoder

ROOT = Path(__file__).resolve().parent.parent
SSL = ["model.name=ssl", "model.classifier_layers=2", "model.hidden=32"]
TUNE = ["model.name=ssl", "model.encoder=x", "model.ssl_mode=finetune"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_encoder("wav2vec2", tmp_path_factory.mktemp("enc") / "wav2vec2")


@pytest.fixture
def ssl_cfg(tiny_env: Path, encoder_dir: Path, tmp_path: Path):
    """A tiny ssl config with its own features cache (the synthetic audio stays in the session cache)."""

    def make(*overrides: str, encoder: Path | str = encoder_dir):
        return load_config(
            overrides=[
                *TINY_OVERRIDES,
                *SSL,
                f"model.encoder={encoder}",
                f"data.features.cache_dir={tmp_path / 'cache'}",
                f"trainer.output_dir={tmp_path / 'runs'}",
                *overrides,
            ]
        )

    return make


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["model.name=ssl"], "model.encoder"),
        (["model.name=ssl", "model.encoder=x", "model.ssl_mode=fine"], "model.ssl_mode"),
        (["model.name=ssl", "model.encoder=x", "model.ssl_pooling=max"], "model.ssl_pooling"),
        (["model.name=ssl", "model.encoder=x", "model.layer=top"], "model.layer"),
        (["model.name=ssl", "model.encoder=x", "model.layer_lr_decay=1.5"], "model.layer_lr_decay"),
        (["model.name=ssl", "model.encoder=x", "model.encoder_lr_scale=0"], "model.encoder_lr_scale"),
        (["model.name=ssl", "model.encoder=x", "model.ssl_cache_dtype=int8"], "model.ssl_cache_dtype"),
        (["model.name=ssl", "model.encoder=x", "data.features.kind=logmel"], "data.features.kind"),
        (["model.name=ssl", "model.encoder=x", "data.features.deltas=2"], "data.features.deltas"),
        (["model.name=ssl", "model.encoder=x", "data.augment.noise_p=0.5"], "data.augment.noise_p"),
        ([*TUNE, "data.augment.specaugment_p=0.5"], "data.augment.specaugment_p"),
        ([*TUNE, "data.features.normalize=speaker"], "data.features.normalize"),
    ],
)
def test_ssl_settings_are_checked_at_load(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        load_config(overrides=overrides)
    assert "\n" not in str(err.value)


def test_code_that_does_not_use_the_family_never_imports_transformers() -> None:
    """ser's own modules import transformers (and the hub client) only to build an encoder. (torchmetrics
    imports transformers by itself whenever it is installed; that is not ser's doing, so the check is on
    who imports it.)"""
    script = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def guard(name, globals=None, locals=None, fromlist=(), level=0):\n"
        "    who = (globals or {}).get('__name__') or ''\n"
        "    if name.split('.')[0] in ('transformers', 'huggingface_hub') and who.split('.')[0] == 'ser':\n"
        "        raise AssertionError(f'{who} imported {name}')\n"
        "    return real(name, globals, locals, fromlist, level)\n"
        "builtins.__import__ = guard\n"
        "import ser.cli, ser.training.fit, ser.sweep.run, ser.inference.scorer, ser.data.embeddings\n"
        "import ser.models.ssl\n"
        "from ser.config import ModelConfig, load_config\n"
        "from ser.models.registry import build_model\n"
        "from ser.sweep.trials import prepared_key\n"
        "build_model(ModelConfig(), (1, 64, 50), 4)\n"
        "build_model(ModelConfig(name='ssl', encoder='x'), (3, 32), 4)\n"
        "prepared_key(load_config(overrides=['model.name=ssl', 'model.encoder=org/name']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# ---------------------------------------------------------------------------------- cached states
def test_states_are_computed_once_then_read_from_the_cache(ssl_cfg) -> None:
    from ser.data.prepared import prepare_data

    cfg = ssl_cfg()
    first = prepare_data(cfg, progress=False)
    second = prepare_data(cfg, progress=False)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert first.kind == "embeddings" and first.x.dtype == np.float16
    assert first.x.shape == (len(first.y), N_STATES, 32)  # per-layer time means of every layer
    assert np.array_equal(np.asarray(first.x), np.asarray(second.x))
    assert first.encoder["identity"].startswith("sha256:") and first.encoder["model_type"] == "wav2vec2"


def test_audio_at_another_rate_than_the_encoders_is_refused_before_reading_it(ssl_cfg) -> None:
    from ser.data.prepared import prepare_data

    with pytest.raises(ConfigError, match=r"data\.audio\.sample_rate=16000"):
        prepare_data(ssl_cfg("data.audio.sample_rate=8000"), progress=False)


def test_another_encoder_or_revision_gets_its_own_states(ssl_cfg, tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    from ser.data.prepared import prepare_data

    folder = save_tiny_encoder("wav2vec2", tmp_path / "mine", seed=0)
    before = prepare_data(ssl_cfg(encoder=folder), progress=False)
    save_tiny_encoder("wav2vec2", folder, seed=1)  # the local copy retrained in place
    after = prepare_data(ssl_cfg(encoder=folder), progress=False)
    assert not after.from_cache and not np.array_equal(np.asarray(before.x), np.asarray(after.x))
    # a hub id: one set of states per commit its revision names
    main, v2 = "1" * 40, "2" * 40
    snapshots = {main: tmp_path / "mine", v2: save_tiny_encoder("wav2vec2", tmp_path / "v2", seed=2)}
    cache = fake_hub_cache(tmp_path / "hub", "ser-test/tiny", snapshots, {"main": main, "v2": v2})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    on_main = prepare_data(ssl_cfg(encoder="ser-test/tiny"), progress=False)
    on_v2 = prepare_data(ssl_cfg("model.encoder_revision=v2", encoder="ser-test/tiny"), progress=False)
    assert on_main.encoder["identity"] == f"ser-test/tiny@{main}"
    assert on_v2.encoder["identity"] == f"ser-test/tiny@{v2}" and not on_v2.from_cache
    assert np.array_equal(np.asarray(on_main.x), np.asarray(after.x))  # the same weights as `mine` now
    assert not np.array_equal(np.asarray(on_main.x), np.asarray(on_v2.x))


def test_time_means_come_from_cached_frames_without_the_encoder(ssl_cfg, monkeypatch) -> None:
    from ser.data.encoders import stack
    from ser.data.prepared import prepare_data

    frames = prepare_data(ssl_cfg("model.ssl_pooling=stats"), progress=False)
    assert frames.x.ndim == 4 and frames.x.shape[1:3] == (N_STATES, 32)

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran although its frames were cached")

    monkeypatch.setattr(stack, "build_stack", no_encoder)
    means = prepare_data(ssl_cfg("model.ssl_pooling=mean"), progress=False)
    expected = np.asarray(frames.x, dtype=np.float32).mean(axis=-1)
    assert np.allclose(np.asarray(means.x, dtype=np.float32), expected, rtol=1e-3, atol=1e-3)


def test_float16_storage_changes_the_states_only_by_its_rounding(ssl_cfg) -> None:
    from ser.data.prepared import prepare_data

    half = np.asarray(prepare_data(ssl_cfg(), progress=False).x, dtype=np.float32)
    full = prepare_data(ssl_cfg("model.ssl_cache_dtype=float32"), progress=False).x
    assert full.dtype == np.float32
    assert np.abs(half - full).max() <= 1e-3 * np.abs(full).max()


def test_speaker_standardisation_works_on_encoder_states(ssl_cfg) -> None:
    from ser.data.prepared import prepare_data

    data = prepare_data(ssl_cfg("data.features.normalize=speaker"), progress=False)
    speakers = np.asarray(data.speakers)
    for speaker in set(data.speakers):
        rows = np.asarray(data.x[speakers == speaker], dtype=np.float64)
        assert np.abs(rows.mean(axis=0)).max() < 1e-4
        assert np.allclose(rows.std(axis=0, ddof=1), 1.0, atol=1e-3)


# ------------------------------------------------------------------------------------- frozen head
@pytest.fixture(scope="module")
def frozen_run(tiny_env: Path, encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Every fold of a frozen head on 6 synthetic speakers (3 folds of 2)."""
    from ser.training.fit import fit_folds

    out = tmp_path_factory.mktemp("frozen")
    cfg = load_config(
        overrides=[
            *TINY_OVERRIDES,
            *SSL,
            f"model.encoder={encoder_dir}",
            "data.synthetic.speakers=6",
            "data.synthetic.per_label=8",
            "data.folds=3",
            "data.fold=all",
            "data.features.normalize=speaker",
            "optim.lr=0.003",
            "trainer.max_epochs=30",
            f"data.features.cache_dir={out / 'cache'}",
            f"trainer.output_dir={out}",
            "trainer.run_name=frozen",
        ]
    )
    return fit_folds(cfg)


@pytest.mark.slow
def test_a_frozen_head_learns_the_synthetic_corpus_well_above_chance(frozen_run) -> None:
    summary = frozen_run.metrics["summary"]
    assert summary["test/uar"]["mean"] >= 0.40, summary  # 4 classes: chance is 0.25
    ckpt = torch.load(frozen_run.folds[0].checkpoint, weights_only=True)
    assert not any(".encoder." in key for key in ckpt["state_dict"])  # the head only
    assert ckpt["ser"]["kind"] == "embeddings" and ckpt["ser"]["encoder"]["model_type"] == "wav2vec2"
    assert frozen_run.folds[0].parameters < 5000


@pytest.mark.slow
def test_predict_evaluate_live_and_serve_score_a_frozen_head(frozen_run, tmp_path: Path) -> None:
    from ser.inference.checkpoint import CheckpointError
    from ser.inference.predict import predict_paths
    from ser.inference.scorer import load_scorer
    from ser.inference.streaming import StreamingScorer
    from ser.training.evaluate import evaluate_checkpoint

    checkpoint = frozen_run.folds[0].checkpoint
    labels = {"neutral", "happy", "sad", "angry"}
    clips = [write_wav(tmp_path / f"{i}.wav", seconds=1.5, kind="tone", seed=i) for i in range(2)]
    results = predict_paths(checkpoint, [str(c) for c in clips])
    assert [r["label"] in labels for r in results] == [True, True]
    evaluated = evaluate_checkpoint(checkpoint, overrides=["data.fold=0"], out_dir=tmp_path / "eval")
    assert evaluated["folds"][0].test["uar"] == pytest.approx(frozen_run.folds[0].test["uar"])
    other = save_tiny_encoder("wav2vec2", tmp_path / "other", seed=3)
    with pytest.raises(CheckpointError, match="trained on the states of"):
        evaluate_checkpoint(checkpoint, overrides=[f"model.encoder={other}"], out_dir=tmp_path / "e2")
    scorer = load_scorer(checkpoint)
    streamer = StreamingScorer(scorer, window=1.0, hop=0.5)
    windows = streamer.push(np.random.default_rng(0).normal(0, 0.1, 40000).astype(np.float32))
    assert len(windows) >= 3 and all(w.label in labels for w in windows)
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from ser.serve.app import create_app

    client = TestClient(create_app(scorer), base_url="http://127.0.0.1")
    reply = client.post("/api/predict", files={"file": ("clip.wav", clips[0].read_bytes(), "audio/wav")})
    assert reply.status_code == 200 and reply.json()["label"] in labels
    assert reply.json()["model"]["feature_kind"] == "embeddings"


def rewritten_checkpoint(source: str, target: Path, encoder: str) -> Path:
    """A copy of a checkpoint whose config says the encoder is at `encoder`."""
    ckpt = torch.load(source, weights_only=True)
    ckpt["ser"]["config"]["model"]["encoder"] = encoder
    torch.save(ckpt, target)
    return target


@pytest.mark.slow
def test_a_frozen_head_without_its_encoder_is_one_clear_error(frozen_run, tmp_path: Path, capsys) -> None:
    from ser.cli import main

    clip = write_wav(tmp_path / "clip.wav", seconds=1.0)
    trained = frozen_run.folds[0].checkpoint
    moved = rewritten_checkpoint(trained, tmp_path / "moved.ckpt", str(tmp_path / "gone"))
    assert main(["predict", str(moved), str(clip)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.encoder" in err and "does not exist" in err
    other = save_tiny_encoder("wav2vec2", tmp_path / "other", seed=5)
    swapped = rewritten_checkpoint(trained, tmp_path / "swapped.ckpt", str(other))
    assert main(["predict", str(swapped), str(clip)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was trained on the states of" in err


# --------------------------------------------------------------------------------------- fine-tune
@pytest.mark.slow
def test_fine_tuning_trains_the_encoder_but_not_its_feature_encoder(ssl_cfg, tmp_path: Path) -> None:
    import shutil

    from ser.inference.predict import predict_paths
    from ser.training.evaluate import evaluate_checkpoint
    from ser.training.fit import fit_folds
    from tests.helpers.encoders import build_tiny

    folder = save_tiny_encoder("wav2vec2", tmp_path / "to_tune")
    cfg = ssl_cfg(
        "model.ssl_mode=finetune",
        "data.features.normalize=none",
        "model.layer_lr_decay=0.5",
        "model.encoder_lr_scale=0.1",
        "model.gradient_checkpointing=true",
        "optim.optimizer=adamw",
        "optim.schedule=tristage",
        "trainer.max_epochs=1",
        encoder=folder,
    )
    run = fit_folds(cfg)
    ckpt = torch.load(run.folds[0].checkpoint, weights_only=True)
    state = ckpt["state_dict"]
    tuned = {k.removeprefix("net.encoder.model."): v for k, v in state.items() if ".encoder." in k}
    pretrained = build_tiny("wav2vec2", seed=0)[0].state_dict()
    conv = [k for k in pretrained if k.startswith("feature_extractor.")]
    layers = [k for k in pretrained if k.startswith("encoder.layers.") and k.endswith(".weight")]
    assert conv and all(torch.equal(tuned[k], pretrained[k]) for k in conv)
    assert any(not torch.equal(tuned[k], pretrained[k]) for k in layers)
    groups = ckpt["optimizer_states"][0]["param_groups"]
    assert ckpt["ser"]["kind"] == "waveform" and len(groups) == 2 + 2 * 3  # head, then 3 encoder depths
    # a fine-tuned checkpoint carries its encoder: it scores without the pretrained folder
    shutil.rmtree(folder)
    clip = write_wav(tmp_path / "clip.wav", seconds=1.2, kind="tone")
    assert predict_paths(run.folds[0].checkpoint, [str(clip)])[0]["label"] in cfg.data.synthetic.labels
    evaluated = evaluate_checkpoint(run.folds[0].checkpoint, out_dir=tmp_path / "eval")
    assert evaluated["folds"][0].test["uar"] == pytest.approx(run.folds[0].test["uar"])


def test_layer_wise_decay_gives_each_depth_its_learning_rate(ssl_cfg) -> None:
    from ser.data.prepared import prepare_data
    from ser.models.optim import as_optim_config, param_groups
    from ser.models.pipeline import build_classifier

    cfg = ssl_cfg("model.ssl_mode=finetune", "data.features.normalize=none")
    cfg.model.layer_lr_decay, cfg.model.encoder_lr_scale, cfg.optim.lr = 0.5, 0.1, 1.0
    data = prepare_data(cfg, progress=False)
    model, _ = build_classifier(
        cfg, data.x.shape[1:], data.labels, data.kind, data.waveform_mode, encoder=data.encoder
    )
    assert all(m.training for m in model.net.modules())  # dropout, LayerDrop, masking on while it trains
    groups = param_groups(model, as_optim_config(cfg.optim))
    by_param = {id(p): g["lr"] for g in groups for p in g["params"]}
    stack = model.net.encoder
    for name, param in stack.model.named_parameters():
        if param.requires_grad:  # top layer 0.1 * 0.5, next 0.1 * 0.25, input embedding 0.1 * 0.125
            assert by_param[id(param)] == pytest.approx(0.1 * 0.5 ** (3 - stack.depth_of(name))), name
    assert all(by_param[id(p)] == 1.0 for p in model.net.head.parameters())
    assert not any(p.requires_grad for p in stack.model.feature_extractor.parameters())


# ------------------------------------------------------------------------------------------ sweeps
def test_trials_share_states_only_for_the_same_encoder_mode_and_pooled_form(ssl_cfg, tmp_path: Path) -> None:
    import yaml

    from ser.sweep.run import _variants
    from ser.sweep.spec import apply_params, load_sweep
    from ser.sweep.trials import prepared_key

    base = ssl_cfg()
    same = {"optim.lr": 0.01, "model.hidden": 64, "model.layer": "last", "model.classifier_layers": 1}
    assert prepared_key(apply_params(base, same)) == prepared_key(base)
    changes = [
        {"model.encoder": "org/other"},
        {"model.encoder_revision": "v2"},
        {"model.ssl_mode": "finetune", "data.features.normalize": "none"},
        {"model.ssl_pooling": "stats"},
        {"model.ssl_cache_dtype": "float32"},
    ]
    keys = {prepared_key(apply_params(base, change)) for change in changes}
    assert len(keys) == len(changes) and prepared_key(base) not in keys
    # the driver prepares one array per pooled form the space can draw: means, and frames
    sweep = tmp_path / "heads.yaml"
    overrides = [o for o in TINY_OVERRIDES if not o.startswith("trainer.")]
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "heads",
                "fixed": {"model.name": "ssl", "model.encoder": "org/name"},
                "space": {
                    "model.ssl_pooling": {"choice": ["mean", "stats", "attention"]},
                    "model.hidden": {"choice": [16, 32]},
                },
            }
        )
    )
    variants = _variants(load_sweep(sweep, overrides))
    assert sorted(v.model.ssl_pooling for v in variants) == ["mean", "stats"]


def test_shipped_ssl_sweeps_without_weights_stop_at_once_saying_how_to_get_them(
    tiny_env, tmp_path: Path, monkeypatch, capsys
) -> None:
    import ray
    from huggingface_hub import constants

    from ser.cli.sweep import main

    ray_was_running = ray.is_initialized()  # another test's session, in this worker
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for name in ("ssl_head", "ssl_finetune"):
        code = main(
            [
                str(ROOT / "sweeps" / f"{name}.yaml"),
                "data.corpus=synthetic",
                f"sweep.storage_path={tmp_path}",
                # what this CPU machine can give (a GPU sweep's resources are refused first, at load)
                "sweep.resources.cpu=1",
                "sweep.resources.gpu=0",
            ]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert "hf download facebook/wav2vec2-base --local-dir DIR" in err[0]
        assert "model.encoder=DIR" in err[0]
        assert ray.is_initialized() == ray_was_running  # refused before Ray starts (seconds here)


# ----------------------------------------------------------------------------------- sweeps with Ray


def ssl_sweep(path: Path, encoder: Path, **sections) -> Path:
    import yaml

    from tests.test_sweep import TINY_FIXED

    fixed = {**TINY_FIXED, "model.name": "ssl", "model.encoder": str(encoder), "model.hidden": 16}
    body = {"name": path.stem, "wandb": {"enabled": False}, "storage_path": str(path.parent / "out")}
    body.update(sections)
    body["fixed"] = {**fixed, **sections.get("fixed", {})}
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.slow
def test_a_head_sweep_over_pooling_completes_every_trial(tiny_env, ray_session, encoder_dir, tmp_path):
    from ser.sweep.run import run_sweep
    from ser.sweep.spec import load_sweep

    sweep = ssl_sweep(
        tmp_path / "heads.yaml",
        encoder_dir,
        space={"model.ssl_pooling": {"choice": ["mean", "stats"]}, "optim.lr": {"choice": [0.003]}},
        num_samples=2,
        scheduler={"name": "fifo", "max_t": 2},
        searcher={"name": "random"},
    )
    result = run_sweep(load_sweep(sweep))
    assert [r["status"] for r in result["rows"]] == ["completed", "completed"], result["rows"]
    assert all(r["epochs"] == 2 for r in result["rows"])


@pytest.mark.slow
def test_a_fine_tuning_trial_trains_with_two_ddp_workers(tiny_env, ray_session, encoder_dir, tmp_path):
    from ser.sweep.run import run_sweep
    from ser.sweep.spec import load_sweep

    sweep = ssl_sweep(
        tmp_path / "ddp.yaml",
        encoder_dir,
        fixed={"model.ssl_mode": "finetune", "data.features.normalize": "none", "model.layer": "1"},
        space={"optim.lr": {"choice": [0.001]}},
        scheduler={"name": "fifo", "max_t": 1},
        resources={"cpu": 1, "workers": 2},
    )
    result = run_sweep(load_sweep(sweep))
    row = result["rows"][0]
    assert row["status"] == "completed", row["error"]
    assert [h["ddp/world_size"] for h in row["history"]] == [2]
