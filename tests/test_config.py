"""The config system: layered YAML + overrides, typos and wrong types rejected with the key named."""

from pathlib import Path

import pytest

from ser.config import ConfigError, load_config


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
    ],
)
def test_bad_override_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=[override])


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


def test_shipped_yaml_files_load() -> None:
    root = Path(__file__).resolve().parent.parent / "configs"
    files = sorted(root.rglob("*.yaml"))
    assert files, "configs/ must ship YAML files"
    for path in files:
        if path.name == "default.yaml":
            continue
        load_config([path])
