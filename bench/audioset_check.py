"""The AudioSet encoders with their real release files: do they classify, does YAMNet match its TFLite, what
does extraction cost? A check script, not a test (the unit tests use random-weight files of the same formats).

    python bench/audioset_check.py /work/shared/weights          # the folder of ../shared/weights/README.md

WEIGHTS_DIR holds yamnet/yamnet.tflite (+ yamnet_class_map.csv), efficientat/mn04_as_mAP_432.pt (+
class_labels_indices.csv) and samples/{speech,music,typing}.wav. Each encoder goes through ser's own loading
(model.encoder=yamnet:PATH / efficientat:PATH -> ser/data/encoders), so what is checked is what training uses.

  top class     each 10-s clip resampled to the encoder's rate; YAMNet's scores averaged over its 0.96-s
                patches (as YAMNet's own inference example does), EfficientAT's clip-level sigmoid;
                expected: Speech / Music / Typing or Computer keyboard
  vs TFLite     YAMNet's PyTorch rebuild against the .tflite itself run by LiteRT (`ai-edge-litert`, only
                here), patch by patch: log-mel, 1024-d embedding (the graph's global mean, read with
                experimental_preserve_all_tensors) and the 521 scores. LiteRT runs the int8 weights with
                dynamic-range kernels that also quantise activations to int8 per patch, while the rebuild
                computes in float32 with the dequantised weights, so they agree to a tolerance, not bitwise.
  front end     the file's own window, DFT and mel constants (int8 in the file) against the ones computed from
                YAMNet's parameters: the largest difference should be half an int8 step
  extraction    seconds of encoder time per minute of audio: 20 clips of 3 s (a RAVDESS utterance), batched as
                training extracts them, best of 3 after a warm-up, on this machine's threads (shared machine:
                absolute seconds are noisy)

Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

EXPECTED = {"speech": ("Speech",), "music": ("Music",), "typing": ("Typing", "Computer keyboard")}
# tolerances of the PyTorch rebuild against LiteRT's int8 kernels (README, AudioSet encoders: the margins)
SCORE_TOL, EMBED_TOL = 0.05, 0.05  # the network alone: max |score diff|, max |embedding diff| / max |value|
END_SCORE_TOL = 0.10  # waveform to scores, through both front ends


def class_names(path: Path) -> list[str]:
    with path.open() as handle:
        return [row["display_name"] for row in csv.DictReader(handle)]


def load_stack(source: str):
    from ser.data.embeddings import encoder_record
    from ser.data.encoders.source import resolve_encoder
    from ser.data.encoders.stack import build_stack

    resolved = resolve_encoder(source)
    return resolved, build_stack(encoder_record(resolved), 48000, pretrained=True)


def clip(root: Path, name: str, rate: int) -> np.ndarray:
    from ser.data.audio import load_audio

    return load_audio(root / "samples" / f"{name}.wav", sample_rate=rate, normalize="none").astype(np.float32)


def top_classes(stack, root: Path, names: list[str], patches: bool) -> tuple[bool, list[str]]:
    import torch

    ok, lines = True, []
    for name, expected in EXPECTED.items():
        wave = torch.from_numpy(clip(root, name, stack.model.sample_rate))[None]
        with torch.inference_mode():
            scores = stack.scores(wave)[0]
        scores = (scores.mean(dim=0) if patches else scores).numpy()
        top = np.argsort(-scores)[:3]
        good = names[top[0]] in expected
        ok &= good
        listed = ", ".join(f"{names[i]} {scores[i]:.3f}" for i in top)
        lines.append(f"  {name:7s} {'ok  ' if good else 'FAIL'} top 3: {listed}")
    return ok, lines


def yamnet_vs_tflite(stack, tflite_path: Path, root: Path) -> tuple[bool, list[str]]:
    import torch

    from ser.data.encoders.yamnet import PATCH_HOP_SAMPLES, PATCH_SAMPLES, pad_waveform

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return True, [
            "  LiteRT (pip install ai-edge-litert) is not installed: the TFLite comparison is skipped"
        ]
    import warnings

    with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": it is, here
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_path=str(tflite_path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    details = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    embedding_index = next(i for n, i in details.items() if n.endswith("global_average_pooling2d/Mean"))
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    worst = {"mel": [], "mel99": [], "score": [], "embed": [], "net_score": [], "net_embed": []}
    agree = n = 0

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a - b).max() / np.abs(b).max())

    for name in EXPECTED:
        wave = pad_waveform(torch.from_numpy(clip(root, name, 16000))[None])[0].numpy()
        with torch.inference_mode():
            mel = stack.model.frontend(torch.from_numpy(wave)[None])[0].numpy()
            embeddings, logits = stack.model.both(torch.from_numpy(wave)[None])
        ours_scores, ours_embed = torch.sigmoid(logits[0]).numpy(), embeddings[0].numpy()
        for p in range(mel.shape[0]):
            segment = wave[p * PATCH_HOP_SAMPLES : p * PATCH_HOP_SAMPLES + PATCH_SAMPLES]
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], segment[None])
            interpreter.invoke()
            ref_scores = interpreter.get_tensor(outputs["Identity"])[0]
            ref_mel = interpreter.get_tensor(outputs["Identity_1"])
            ref_embed = interpreter.get_tensor(embedding_index)[0]
            with torch.inference_mode():  # the network alone, on LiteRT's own log-mel
                net_embed, net_logits = stack.model.net(torch.from_numpy(ref_mel)[None])
            worst["mel"].append(float(np.abs(mel[p] - ref_mel).max()))
            worst["mel99"].append(float(np.percentile(np.abs(mel[p] - ref_mel), 99)))
            worst["score"].append(float(np.abs(ours_scores[p] - ref_scores).max()))
            worst["embed"].append(rel(ours_embed[p], ref_embed))
            worst["net_score"].append(float(np.abs(torch.sigmoid(net_logits[0]).numpy() - ref_scores).max()))
            worst["net_embed"].append(rel(net_embed[0].numpy(), ref_embed))
            agree += int(ours_scores[p].argmax() == ref_scores.argmax())
            n += 1
    top = {k: max(v) for k, v in worst.items()}
    net_ok = top["net_score"] <= SCORE_TOL and top["net_embed"] <= EMBED_TOL
    end_ok = top["score"] <= END_SCORE_TOL and agree >= 0.95 * n
    return net_ok and end_ok, [
        f"  {n} patches of the 3 clips (worst patch; median patch in brackets)",
        f"  network on LiteRT's log-mel: {'ok' if net_ok else 'FAIL'}: scores max |diff| "
        f"{top['net_score']:.4f} "
        f"[{np.median(worst['net_score']):.4f}] (tolerance {SCORE_TOL}), embedding max |diff| / max |value| "
        f"{top['net_embed']:.4f} [{np.median(worst['net_embed']):.4f}] (tolerance {EMBED_TOL})",
        f"  waveform to scores: {'ok' if end_ok else 'FAIL'}: scores max |diff| {top['score']:.4f} "
        f"[{np.median(worst['score']):.4f}] (tolerance {END_SCORE_TOL}), same top class: {agree}/{n} patches "
        f"(at least 95%), embedding {top['embed']:.4f} [{np.median(worst['embed']):.4f}]",
        f"  log-mel max |diff| {top['mel']:.3f} [{np.median(worst['mel']):.3f}], 99th percentile of bins "
        f"{top['mel99']:.3f} [{np.median(worst['mel99']):.3f}]: LiteRT quantises the frames to int8 before "
        "its int8 DFT, which zeroes the quietest bins of loud patches (log 0.001 = -6.9)",
    ]


def frontend_constants(stack) -> list[str]:
    from ser.data.encoders.yamnet import canonical_frontend

    computed = canonical_frontend()
    lines = []
    for key in ("window", "dft_real", "dft_imag", "mel", "mel_bias"):
        stored = getattr(stack.model.frontend, key).numpy()
        lines.append(f"  {key:9s} max |file - computed| {np.abs(stored - computed[key]).max():.5f}")
    return lines


def extraction_seconds_per_minute(stack, clips: int = 20, seconds: float = 3.0) -> float:
    import torch

    rate = stack.model.sample_rate
    waves = torch.from_numpy(
        np.random.default_rng(0).normal(0, 0.05, (clips, int(rate * seconds))).astype("f4")
    )
    batch = 8
    with torch.inference_mode():
        stack(waves[:2])
        times = []
        for _ in range(3):
            start = time.perf_counter()
            for k in range(0, clips, batch):
                stack(waves[k : k + batch])
            times.append(time.perf_counter() - start)
    return min(times) / (clips * seconds / 60.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("weights_dir", type=Path)
    args = parser.parse_args(argv)
    import torch

    root = args.weights_dir
    ok = True
    yamnet_file = root / "yamnet" / "yamnet.tflite"
    source, yamnet = load_stack(f"yamnet:{yamnet_file}")
    params = sum(p.numel() for p in yamnet.model.net.parameters())
    print(f"YAMNet {yamnet_file} ({params:,} parameters, {source.identity[:19]}...)")
    good, lines = top_classes(
        yamnet, root, class_names(root / "yamnet" / "yamnet_class_map.csv"), patches=True
    )
    ok &= good
    print("\n".join(lines))
    print("YAMNet PyTorch vs the .tflite run by LiteRT")
    good, lines = yamnet_vs_tflite(yamnet, yamnet_file, root)
    ok &= good
    print("\n".join(lines))
    print("YAMNet front-end constants in the file vs computed from its parameters (int8 step 1/127 = 0.0079)")
    print("\n".join(frontend_constants(yamnet)))
    efficientat_file = root / "efficientat" / "mn04_as_mAP_432.pt"
    source, efficientat = load_stack(f"efficientat:{efficientat_file}")
    params = sum(p.numel() for p in efficientat.model.net.parameters())
    width = source.config["width"]
    print(f"EfficientAT {efficientat_file} ({width}, {params:,} parameters, {source.identity[:19]}...)")
    labels = class_names(root / "efficientat" / "class_labels_indices.csv")
    good, lines = top_classes(efficientat, root, labels, patches=False)
    ok &= good
    print("\n".join(lines))
    print(f"Extraction, seconds per minute of audio ({torch.get_num_threads()} threads, best of 3)")
    for name, stack in (("yamnet", yamnet), ("efficientat", efficientat)):
        print(f"  {name:11s} {extraction_seconds_per_minute(stack):.2f} s")
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
