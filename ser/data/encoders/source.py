"""`model.encoder` -> the folder on this machine that holds a pretrained encoder, and an identity that
changes whenever its weights or settings do.

A local directory is used as it is (nothing is downloaded); its identity is a content hash of its config
and weight files (memoised per file size and mtime, like the audio cache). A hub id is looked up in the
Hugging Face cache and downloaded there only when it is missing and the network is reachable; its identity
is `repo@commit`. Without network the error is one line saying how to download it once.

Only json and `huggingface_hub` are needed here: torch and transformers are imported by the code that
builds the encoder (stack.py), so resolving, hashing and cache keys stay cheap.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ser.config import ConfigError
from ser.data.encoders.identity import EncoderSource
from ser.extras import install_hint

# The architectures whose front ends ser/data/encoders/preprocess.py reproduces, by config.model_type.
WAV2VEC2_LIKE = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
SUPPORTED = (*WAV2VEC2_LIKE, "whisper", "audio-spectrogram-transformer")
AUDIOSET = ("yamnet", "efficientat")  # single-file AudioSet encoders (audioset.py)
SETTINGS_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
INSTALL_HINT = f"{install_hint('ssl')} (Hugging Face transformers)"


def encoder_error(problem: str) -> ConfigError:
    return ConfigError(f"invalid config key 'model.encoder': {problem}")


def download_hint(repo: str, revision: str | None) -> str:
    rev = f" --revision {revision}" if revision else ""
    return (
        f"download it once where there is network: `hf download {repo}{rev} --local-dir DIR` (older "
        "huggingface_hub: `huggingface-cli download ...`), then set model.encoder=DIR"
    )


def weight_files(folder: Path) -> list[Path]:
    """The weights in `folder`, safetensors preferred (transformers loads those when both exist)."""
    for pattern in WEIGHT_PATTERNS:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return found
    return []


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise encoder_error(f"{path.parent} has no {path.name} ({what})") from None
    except (OSError, ValueError) as exc:
        raise encoder_error(f"{path} is not readable JSON ({exc})") from None
    if not isinstance(content, dict):
        raise encoder_error(f"{path} does not hold a JSON object")
    return content


def _content_identity(folder: Path, files: list[Path], cache_dir: str | None) -> str:
    """sha256 over every file's name and bytes; memoised under the ser cache per (name, size, mtime_ns),
    so a 1 GB checkpoint is read once, not on every run."""
    from ser.data.paths import cache_root

    stats = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo_key = hashlib.sha256(json.dumps([str(folder.resolve()), stats]).encode()).hexdigest()
    memo = cache_root(cache_dir) / "encoders" / f"{memo_key}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    identity = f"sha256:{digest.hexdigest()}"
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".tmp{id(files)}")
    tmp.write_text(identity)
    tmp.replace(memo)
    return identity


def _hub_folder(repo: str, revision: str | None) -> Path:
    """The hub snapshot folder holding `repo`'s settings and weights: from the Hugging Face cache, else
    downloaded (small files first, then safetensors, else the .bin weights, never both)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise encoder_error(f"{repo!r} is a hub id, which needs {INSTALL_HINT}") from None

    def fetch(patterns: list[str]) -> Path:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=patterns))

    try:
        folder = fetch(["*.json"])
        for patterns in (["*.safetensors", "*.json"], ["pytorch_model*.bin", "*.json"]):
            if weight_files(folder):
                break
            folder = fetch(patterns)
    except Exception as exc:  # offline, unknown repo or revision, gated, hub down: one line either way
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise encoder_error(
            f"{repo!r} is not a local directory and could not be fetched from the Hugging Face hub "
            f"({type(exc).__name__}: {reason}); {download_hint(repo, revision)}"
        ) from None
    return folder


def resolve_encoder(source: str, revision: str | None = None, cache_dir: str | None = None) -> EncoderSource:
    """Where `source` (a local directory or a hub id) is, with its settings and identity; a ConfigError
    naming model.encoder when it is missing, incomplete or not a supported architecture."""
    if not source:
        raise encoder_error("not set: give a hub id (e.g. facebook/wav2vec2-base) or a local directory")
    from ser.data.encoders.audioset import is_audioset_source, resolve_audioset

    if is_audioset_source(source):  # yamnet:PATH, efficientat:PATH or one weight file (audioset.py)
        return resolve_audioset(source, revision, cache_dir)
    path = Path(source).expanduser()
    if path.is_dir():
        if revision:
            raise ConfigError(
                f"invalid config key 'model.encoder_revision': {revision!r} applies to hub ids; "
                f"model.encoder={source} is a local directory, which is used as it is"
            )
        folder = path.resolve()
        hub = False
    elif path.exists():
        raise encoder_error(f"{source} is a file; give the directory that holds config.json and the weights")
    elif HUB_ID.match(source) and not source.startswith((".", "~")):
        folder = _hub_folder(source, revision)
        hub = True
    else:
        raise encoder_error(f"directory {source} does not exist (nor is it a hub id like org/name)")
    config = _read_json(folder / "config.json", "the encoder's architecture")
    model_type = str(config.get("model_type", ""))
    if model_type not in SUPPORTED:
        raise encoder_error(
            f"{source} is a {model_type or 'model without a model_type'!r}; supported encoders: "
            f"{', '.join(SUPPORTED)}"
        )
    preprocessor = _read_json(
        folder / "preprocessor_config.json",
        "the feature extractor's settings: sample rate, normalisation, log-mel; save it with "
        "AutoFeatureExtractor.save_pretrained(DIR) or download the whole repository",
    )
    weights = weight_files(folder)
    if not weights:
        raise encoder_error(f"{folder} holds no weights (model.safetensors or pytorch_model.bin)")
    if hub:
        identity = f"{source}@{folder.name}"  # snapshots/<commit>: the commit pins every file
    else:
        settings = [folder / name for name in SETTINGS_FILES]
        identity = _content_identity(folder, [*settings, *weights], cache_dir)
    return EncoderSource(
        source=str(source),
        revision=revision or None,
        folder=folder,
        identity=identity,
        model_type=model_type,
        config=config,
        preprocessor=preprocessor,
    )
