"""Schema, then config files (or packaged presets by name), then dotted `key=value` overrides.

A config file holds only differences from the schema. It may name other configs it builds on with a
top-level `base: [data/ravdess, model/emotion_detector]` (presets by name, or files relative to it), the
way an experiment overlays its data and model configs. OmegaConf rejects an unknown key or a wrong type at
merge time; that is re-raised as a `ConfigError` naming the key and the file, so a typo never silently
trains the default.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ser.config.schema import ConfigError, RootConfig


def _preset_dir() -> Path:
    """The recipes: top-level `configs/` in a source checkout (where people look for them), mapped into
    the package as `ser/config/presets` when a wheel is built (setup.py's package_dir): one copy."""
    here = Path(__file__).resolve().parent
    packaged = here / "presets"
    return packaged if packaged.is_dir() else here.parent.parent / "configs"


PRESET_DIR = _preset_dir()
BASE_KEY = "base"  # a config file's list of configs it builds on


def _raise_named(exc: OmegaConfBaseException, source: str) -> None:
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None)
    msg = (getattr(exc, "msg", None) or str(exc)).splitlines()[0]
    where = f" in {source}" if source else ""
    raise ConfigError(f"invalid config key '{key}'{where}: {msg}") from None


def _container_mismatch(base: Any, other: Any, prefix: str = "") -> tuple[str, str, str] | None:
    """(key, wanted, given) of the first key where `other` holds a list for a mapping or a mapping for a
    list: OmegaConf reports that as a bare TypeError without the key."""
    if not isinstance(other, (dict, DictConfig)) or not isinstance(base, DictConfig):
        return None
    for key in other:
        if key not in base:
            continue
        full = f"{prefix}{key}"
        want, given = base._get_node(key), other[key]
        want_list = isinstance(want, ListConfig) or OmegaConf.is_list(want)
        want_dict = isinstance(want, DictConfig)
        if want_list and isinstance(given, (dict, DictConfig)):
            return full, "a list", "a mapping"
        if want_dict and isinstance(given, (list, tuple, ListConfig)):
            return full, "a mapping", "a list"
        if want_dict:
            found = _container_mismatch(want, given, f"{full}.")
            if found:
                return found
    return None


def merge_into(base: DictConfig, other: Any, source: str = "") -> DictConfig:
    """Merge a mapping (YAML content or dotlist) into a structured config, naming bad keys."""
    try:
        return OmegaConf.merge(base, other)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        _raise_named(exc, source)
        raise  # unreachable
    except (TypeError, ValueError) as exc:  # "Cannot merge incompatible container types"
        where = f" in {source}" if source else ""
        found = _container_mismatch(base, other)
        if found is None:
            raise ConfigError(f"invalid config{where}: {str(exc).splitlines()[0]}") from None
        key, want, given = found
        raise ConfigError(f"invalid config key '{key}'{where}: must be {want}, not {given}") from None


def check_resolvable(cfg: DictConfig, source: str = "") -> None:
    """Every `${...}` interpolation resolves; ConfigError naming the key otherwise (OmegaConf resolves
    lazily, so an unknown key used to surface as a traceback wherever the value was first read)."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        _raise_named(exc, source)


def parse_overrides(overrides: Sequence[str]) -> DictConfig:
    """Parse `a.b=c` strings; a malformed one is a ConfigError naming it."""
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}' is not of the form key=value")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        _raise_named(exc, "overrides")
        raise


def read_yaml(path: str | Path) -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = OmegaConf.load(path)
    except Exception as exc:  # yaml.YAMLError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"config file {path} is not valid YAML: {first}") from None
    if loaded is None:
        return OmegaConf.create({})
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


# ------------------------------------------------------------------------------------------- presets
ABBREVIATIONS = ("e.g.", "i.e.", "incl.", "vs.", "cf.", "approx.", "etc.")


def first_sentence(text: str) -> str:
    """The first sentence of a comment (a period, outside brackets and backticks, before a space or the
    end; not an abbreviation's), so `ser configs` never stops mid-sentence at a line break."""
    depth, code = 0, False
    for i, char in enumerate(text):
        if char == "`":
            code = not code
        elif code:
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char == "." and depth == 0 and (i + 1 == len(text) or text[i + 1] == " "):
            if not any(text[: i + 1].endswith(a) for a in ABBREVIATIONS):
                return text[: i + 1]
    return text.strip()


def preset_description(text: str) -> str:
    """The first sentence of a preset's leading comment block (its `#` lines, joined)."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            if lines:
                break
            continue
        lines.append(line.lstrip("#").strip())
    return first_sentence(" ".join(part for part in lines if part))


def list_presets() -> list[tuple[str, str]]:
    """(name, what it is) of every packaged preset, e.g. ("model/sentan", "SentAn, tuned on ..."): the first
    sentence of its leading comment."""
    presets = []
    for path in sorted(PRESET_DIR.rglob("*.yaml")):
        name = path.relative_to(PRESET_DIR).with_suffix("").as_posix()
        presets.append((name, preset_description(path.read_text())))
    return presets


def preset_names() -> list[str]:
    return [name for name, _ in list_presets()]


def resolve_config_file(item: str | Path, relative_to: Path | None = None) -> Path:
    """A config named by path (as given, or relative to `relative_to`) or by preset name (`ravdess`,
    `model/sentan`, with or without `.yaml`); ConfigError listing the presets otherwise."""
    path = Path(item).expanduser()
    if path.is_file():
        return path
    if relative_to is not None and (relative_to / path).is_file():
        return relative_to / path
    name = str(item).removesuffix(".yaml")
    preset = PRESET_DIR / f"{name}.yaml"
    if name and preset.is_file() and preset.resolve().is_relative_to(PRESET_DIR):
        return preset
    names = preset_names()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    what = (
        "config file {} does not exist"
        if str(item).endswith((".yaml", ".yml"))
        else "config '{}' is neither a file nor a preset"
    )
    raise ConfigError(f"{what.format(item)}{hint} (presets: {', '.join(names)}; `ser configs` lists them)")


def read_layers(item: str | Path, relative_to: Path | None = None, _seen: tuple[Path, ...] = ()) -> list:
    """[(path, content)] of a config and, first, the configs its `base:` list names (recursively)."""
    path = resolve_config_file(item, relative_to).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"config files name each other as base in a loop: {chain}")
    content = read_yaml(path)
    layers = []
    bases = content.get(BASE_KEY) if BASE_KEY in content else None
    if bases is not None:
        if isinstance(bases, str):
            bases = [bases]
        for base in bases:
            layers.extend(read_layers(str(base), path.parent, (*_seen, path)))
        content = OmegaConf.masked_copy(content, [k for k in content if k != BASE_KEY])
    layers.append((path, content))
    return layers


def load_config(
    files: Sequence[str | Path | Mapping[str, Any]] = (), overrides: Sequence[str] = ()
) -> DictConfig:
    """The schema, then each config (file or preset, after the configs it builds on; or a mapping of
    differences, nested or with dotted keys, from Python), then overrides; validated (ranges and
    enumerations) before it is returned."""
    from ser.config.validate import validate

    cfg: DictConfig = OmegaConf.structured(RootConfig)
    for item in files:
        if isinstance(item, Mapping):
            cfg = merge_into(cfg, _nested(item), "the given mapping")
            continue
        for path, layer in read_layers(item):
            cfg = merge_into(cfg, layer, str(path))
    cfg = merge_into(cfg, parse_overrides(overrides), "overrides")
    check_resolvable(cfg, " or ".join([*(str(f) for f in files), "overrides"]))
    validate(cfg)
    return cfg


def _nested(mapping: Mapping[str, Any]) -> DictConfig:
    """{"model.depth": 2, "data": {...}} -> one nested config (dotted keys split, as in overrides)."""
    out = OmegaConf.create({})
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            value = _nested(value)
        OmegaConf.update(out, str(key), value, merge=True)
    return out


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
