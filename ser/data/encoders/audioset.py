"""AudioSet encoders from single local files: YAMNet (`yamnet:PATH`, a .tflite release) and EfficientAT
(`efficientat:PATH`, a release .pt state dict); a bare PATH is recognised by its contents (TFLite's TFL3
identifier, a torch zip archive, HDF5's signature).

They plug into the `ssl` family beside the Hugging Face encoders: `resolve_audioset` gives the same
EncoderSource (identity = the file's sha256, so the frozen cache is keyed by the weights themselves), and
`AudioSetStack` the same module contract as stack.EncoderStack: waveforms [B, samples] -> states
[B, 1, D, T], one "layer" (the embedding before the AudioSet classifier) over T time steps (YAMNet: 0.96 s
patches every 0.48 s; EfficientAT: its last feature map averaged over mel, every 0.32 s). The mean over T is
each model's own clip embedding. Each encoder brings its own front end (yamnet.py, efficientat.py).

Nothing is downloaded; a missing or unreadable file is one line naming it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ser.config import ConfigError
from ser.extras import install_hint

KINDS = ("yamnet", "efficientat")
RATES = {"yamnet": 16000, "efficientat": 32000}
FORMATS = {"yamnet": (".tflite", ".h5"), "efficientat": (".pt", ".pth")}
SIGNATURES = {b"TFL3": "tflite", b"\x89HDF\r\n\x1a\n": "h5", b"PK\x03\x04": "pt"}
INSTALL_HINT = install_hint("audioset")


def encoder_error(problem: str) -> ConfigError:
    return ConfigError(f"invalid config key 'model.encoder': {problem}")


def split_spec(source: str) -> tuple[str | None, str]:
    """'yamnet:PATH' -> ('yamnet', PATH); a bare path -> (None, path)."""
    head, sep, rest = str(source).partition(":")
    if sep and head.lower() in KINDS:
        return head.lower(), rest
    return None, str(source)


def is_audioset_source(source: str | None) -> bool:
    """Whether `model.encoder` names an AudioSet encoder file (a prefix, or an existing file)."""
    if not source:
        return False
    kind, path = split_spec(source)
    return kind is not None or Path(path).expanduser().is_file()


def file_format(path: Path) -> str | None:
    """'tflite', 'h5' or 'pt' from the file's first bytes, None when none matches."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head[4:8] == b"TFL3":
        return "tflite"
    for signature, name in SIGNATURES.items():
        if head.startswith(signature):
            return name
    return None


def file_sha256(path: Path, cache_dir: str | None) -> str:
    """sha256 of the file, memoised under the ser cache per (path, size, mtime) like a folder's identity."""
    from ser.data.paths import cache_root

    stat = path.stat()
    memo_key = hashlib.sha256(json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns]).encode())
    memo = cache_root(cache_dir) / "encoders" / f"{memo_key.hexdigest()}.sha256"
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".tmp{id(digest)}")
    tmp.write_text(digest.hexdigest())
    tmp.replace(memo)
    return digest.hexdigest()


def _torch_state(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, a pickle with code in it, truncated: one line either way
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise encoder_error(f"{path} cannot be read as a torch state dict ({first})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise encoder_error(f"{path} does not hold a state dict (name -> tensor)")
    return state


def load_network(kind: str, path: Path):
    """The pretrained module (yamnet.Yamnet or efficientat.EfficientAT) in the file at `path`."""
    if kind == "yamnet":
        fmt = file_format(path)
        if fmt == "h5":
            raise encoder_error(
                f"{path}: the Keras yamnet.h5 is not supported yet; use the TFLite release (yamnet.tflite)"
            )
        from ser.data.encoders.tflite_graph import TFLiteFormatError
        from ser.data.encoders.yamnet import YamnetFormatError, load_tflite

        try:
            return load_tflite(path)
        except (TFLiteFormatError, YamnetFormatError) as exc:
            raise encoder_error(f"{path} is not a YAMNet TFLite file ({exc})") from None
    from ser.data.encoders.efficientat import EfficientATFormatError, load_state_dict

    try:
        return load_state_dict(_torch_state(path))
    except EfficientATFormatError as exc:
        raise encoder_error(f"{path} is not an EfficientAT state dict ({exc})") from None


def read_layout(kind: str, path: Path) -> dict[str, Any]:
    """The architecture in the file (recorded with checkpoints, to rebuild it untrained)."""
    if kind == "yamnet":
        model = load_network(kind, path)
        return {"layout": _yamnet_layout(model)}
    from ser.data.encoders.efficientat import EfficientATFormatError, width_name
    from ser.data.encoders.efficientat import read_layout as efficientat_layout

    try:
        layout = efficientat_layout(_torch_state(path))
    except EfficientATFormatError as exc:
        raise encoder_error(f"{path} is not an EfficientAT state dict ({exc})") from None
    return {"layout": layout, "width": width_name(layout)}


def _yamnet_layout(model: Any) -> dict[str, Any]:
    layers = list(model.net.layers)
    stem = layers[0]
    blocks = [
        [int(pw.out_channels), int(dw.stride[0]), int(dw.kernel_size[0])]
        for dw, pw in zip(layers[1::2], layers[2::2], strict=True)
    ]
    return {
        "stem": [int(stem.out_channels), int(stem.stride[0]), int(stem.kernel_size[0])],
        "blocks": blocks,
        "classes": int(model.net.classifier.out_features),
    }


def _detect_kind(path: Path, source: str) -> str:
    fmt = file_format(path)
    if fmt in ("tflite", "h5"):
        return "yamnet"
    if fmt == "pt":
        return "efficientat"
    raise encoder_error(
        f"{source} is a file of no encoder format ser reads (not TFLite, HDF5 or torch): give the directory "
        "that holds config.json and the weights, or an AudioSet file as yamnet:PATH / efficientat:PATH"
    )


def resolve_audioset(source: str, revision: str | None, cache_dir: str | None):
    """The EncoderSource of an AudioSet encoder file; ConfigError naming model.encoder when it is missing,
    of an unknown format, or does not load into the network it names."""
    from ser.data.encoders.identity import EncoderSource

    kind, raw = split_spec(source)
    if revision:
        raise ConfigError(
            f"invalid config key 'model.encoder_revision': {revision!r} applies to hub ids; "
            f"model.encoder={source} is a local file, which is used as it is"
        )
    if not raw:
        raise encoder_error(f"{source}: no file after '{kind}:' (write {kind}:PATH)")
    path = Path(raw).expanduser()
    if not path.exists():
        raise encoder_error(f"file {raw} does not exist")
    if not path.is_file():
        raise encoder_error(f"{raw} is a directory; {kind or 'an AudioSet encoder'} takes one weight file")
    kind = kind or _detect_kind(path, source)
    if file_format(path) is None:
        raise encoder_error(f"{raw} is neither a TFLite, HDF5 nor torch file; a {kind} takes {FORMATS[kind]}")
    path = path.resolve()
    config = {"model_type": kind, "file": path.name, "format": file_format(path), **read_layout(kind, path)}
    return EncoderSource(
        source=str(source),
        revision=None,
        folder=path.parent,
        identity=f"sha256:{file_sha256(path, cache_dir)}",
        model_type=kind,
        config=config,
        preprocessor={"sampling_rate": RATES[kind]},
    )
