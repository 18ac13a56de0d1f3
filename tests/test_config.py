"""The config system: layered YAML + presets + overrides, typos, wrong types and out-of-range values
rejected with the key named, and no torch needed to load a config."""

import subprocess
import sys
from pathlib import Path

import pytest

from ser.config import ConfigError, list_presets, load_config, resolve_config_file
from ser.config.validate import RANGES


def test_defaults_then_file_then_overrides(tmp_path: Path) -> None:
    layer = tmp_path / "exp.yaml"
    layer.write_text("model:\n  depth: 7\n  kernel_size: 5\noptim:\n  lr: 0.01\n")
    cfg = load_config([layer], ["optim.lr=0.002", "data.fold=all"])
    assert cfg.model.depth == 7 and cfg.model.kernel_size == 5
    assert cfg.optim.lr == pytest.approx(0.002)  # the override wins over the file
    assert cfg.data.fold == "all"
    assert cfg.model.name == "emotion_detector"  # untouched defaults survive


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.dpth=4", "model.dpth"),
        ("model.depth=deep", "model.depth"),
        ("optim.lr=fast", "optim.lr"),
        ("nonsense.key=1", "nonsense"),
        ("model.dropout=everywhere", "model.dropout"),
        ("data.fold=first", "data.fold"),
        ("data.corpus=ravdes", "data.corpus"),
    ],
)
def test_bad_override_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=[override])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.batch_size=0", "data.batch_size"),
        ("data.folds=1", "data.folds"),
        ("data.audio.sample_rate=0", "data.audio.sample_rate"),
        ("data.audio.duration=-1", "data.audio.duration"),
        ("data.features.n_mels=0", "data.features.n_mels"),
        ("data.synthetic.speakers=1", "data.synthetic.speakers"),
        ("trainer.precision=bogus", "trainer.precision"),
        ("trainer.max_epochs=-1", "trainer.max_epochs"),
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("trainer.monitor=val/acc", "trainer.monitor"),
        ("optim.ema_decay=1.0", "optim.ema_decay"),
        ("optim.label_smoothing=1.5", "optim.label_smoothing"),
        ("model.depth=0", "model.depth"),
        ("optim.lr=-1", "optim.lr"),
        ("data.augment.noise_p=2", "data.augment.noise_p"),
        ("data.features.kind=mfcc data.features.n_mfcc=80", "data.features.n_mfcc"),
        ("data.features.fmax=9000", "data.features.fmax"),
    ],
)
def test_out_of_range_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("/", "/")):
        load_config(overrides=override.split())


def test_every_range_names_a_real_key() -> None:
    cfg = load_config()
    from omegaconf import OmegaConf

    for key in RANGES:
        assert OmegaConf.select(cfg, key, default="MISSING") != "MISSING", key


def test_typo_in_yaml_names_file_and_key(tmp_path: Path) -> None:
    layer = tmp_path / "bad.yaml"
    layer.write_text("trainer:\n  max_epoch: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config([layer])
    assert "trainer.max_epoch" in str(info.value) and "bad.yaml" in str(info.value)


def test_malformed_override_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        load_config(overrides=["model.depth"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([tmp_path / "nope.yaml"])


def test_every_preset_loads_and_the_ravdess_recipe_is_one_name() -> None:
    names = [name for name, _ in list_presets()]
    assert {"ravdess", "data/ravdess", "model/sentan", "model/emotion_detector"} <= set(names)
    needs_file = {"ravdess": "model.encoder=efficientat:/weights/mn04_as_mAP_432.pt"}
    for name, comment in list_presets():
        assert comment, f"preset {name} needs a first comment line saying what it is"
        load_config([name], [needs_file[name]] if name in needs_file else [])
    cnn = load_config(["ravdess_cnn"], ["data.root=/somewhere"])
    assert cnn.data.corpus == "ravdess" and cnn.data.features.normalize == "speaker"
    assert cnn.model.name == "emotion_detector" and cnn.model.fusion == "none"
    # the recipe: that CNN fused late with the EfficientAT file the user passes; without it, one line
    recipe = load_config(["ravdess"], ["data.root=/somewhere", needs_file["ravdess"]])
    assert (recipe.model.fusion, recipe.model.fusion_view) == ("late", "encoder")
    assert recipe.data == cnn.data and recipe.model.classifier_dropout == cnn.model.classifier_dropout
    with pytest.raises(ConfigError, match=r"model\.encoder.*efficientat:PATH.*--config ravdess_cnn"):
        load_config(["ravdess"], ["data.root=/somewhere"])


def test_presets_by_name_with_suffix_and_did_you_mean() -> None:
    assert resolve_config_file("model/sentan") == resolve_config_file("model/sentan.yaml")
    with pytest.raises(ConfigError, match="did you mean 'model/sentan'"):
        resolve_config_file("model/sentn")


def test_a_config_builds_on_others_named_in_base(tmp_path: Path) -> None:
    layer = tmp_path / "mine.yaml"
    layer.write_text("base: [data/ravdess, model/sentan]\nmodel:\n  depth: 1\n")
    cfg = load_config([layer])
    assert cfg.data.corpus == "ravdess" and cfg.model.name == "sentan" and cfg.model.depth == 1
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: [loop.yaml]\n")
    with pytest.raises(ConfigError, match="loop"):
        load_config([loop])


def test_loading_a_config_imports_no_torch_or_lightning() -> None:
    code = (
        "import sys\n"
        "from ser.config import load_config\n"
        "load_config(['ravdess'], ['data.root=x', 'model.encoder=efficientat:/w/mn04.pt'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'ray'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_import_cycles_between_ser_packages() -> None:
    """Arrows point down: cli -> sweep -> training -> models/data -> config; inference never imports
    training. Checked on the import statements of every module."""
    import ast

    root = Path(__file__).resolve().parent.parent / "ser"
    rank = {
        "config": 0,
        "report": 1,
        "data": 1,
        "models": 2,
        "inference": 3,
        "training": 3,
        "sweep": 4,
        "serve": 4,
        "cli": 5,
        "api": 6,  # the Python face (ser/api.py) sits above everything, like the CLI
        "extras": 0,  # install hints: imports nothing
    }
    for path in root.rglob("*.py"):
        package = path.relative_to(root).parts[0].removesuffix(".py")
        if package not in rank:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ser."):
                target = node.module.split(".")[1]
                if target not in rank or path.name == "__main__.py":
                    continue
                assert rank[target] <= rank[package], f"{path.relative_to(root)} imports {node.module}"
                if package == "inference":
                    assert target != "training", f"{path.relative_to(root)}: inference imports training"
