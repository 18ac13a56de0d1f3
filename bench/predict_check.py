"""Does `ser predict` score a trained fold as its test did? A check script for real data (the unit tests do
it on the synthetic corpus): it takes a fold's checkpoint, finds the fold's test utterances in the corpus
the checkpoint names (or DATA_ROOT), scores their audio files with `ser predict`'s own code path, one
window per file (longer than any clip, so the clip is cropped as training cropped it) and the files of each
test speaker standardised together (as training standardised each speaker), and compares with the
probabilities the fold's test wrote from the feature cache (predictions.npz).

    python bench/predict_check.py runs/<run>/fold_0 [--data-root ../shared/data/ravdess-dev-16k]

Prints the test UA both ways, the share of utterances given the same label and the largest probability
difference. For a fusion with an encoder view the window is resampled to the encoder's rate where training
decoded the whole file at it, so small differences are expected there; exit status 1 when the labels
agree on fewer than 95% of the utterances.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fold_dir", type=Path, help="a fold folder of `ser fit`: best.ckpt, predictions.npz")
    parser.add_argument("--data-root", help="the corpus folder, if not where the checkpoint's config says")
    args = parser.parse_args(argv)

    from ser.data.dataset import build_dataset
    from ser.inference.checkpoint import read_checkpoint
    from ser.inference.predict import predict_paths
    from ser.report.predictions import read_predictions
    from ser.sweep.stats import unweighted_accuracy

    checkpoints = sorted(args.fold_dir.glob("*.ckpt"))
    if not checkpoints:
        print(f"{args.fold_dir}: no checkpoint (*.ckpt) in this folder", file=sys.stderr)
        return 2
    checkpoint = next((c for c in checkpoints if c.name == "best.ckpt"), checkpoints[0])
    saved = read_predictions(args.fold_dir / "predictions.npz")
    ckpt = read_checkpoint(checkpoint)
    data_cfg = ckpt.cfg.data.copy()
    if args.data_root:
        data_cfg.root = args.data_root
    by_id = {u.id: u for u in build_dataset(data_cfg, check_audio=False, progress=False).utterances}
    missing = [i for i in saved.ids if i not in by_id]
    if missing:
        print(f"{data_cfg.root}: lacks {len(missing)} test utterance(s), e.g. {missing[0]}", file=sys.stderr)
        return 2
    speakers = sorted(set(saved.speakers))
    # every clip of a test speaker (training standardised each speaker over all their clips)
    mine = sorted(u.id for u in by_id.values() if u.speaker in speakers)
    paths = [by_id[i].path for i in mine]
    began = time.perf_counter()
    results: dict[str, dict] = {}
    for speaker in speakers:
        ids = [i for i in mine if by_id[i].speaker == speaker]
        scored = predict_paths(checkpoint, [by_id[i].path for i in ids], window=60.0, same_speaker=True)
        results.update(zip(ids, scored))
    seconds = time.perf_counter() - began
    labels = ckpt.labels
    probs = np.array([[results[i]["probabilities"][label] for label in labels] for i in saved.ids])
    pred, cached = probs.argmax(1), saved.probs.argmax(1)
    agree = float((pred == cached).mean())
    print(f"checkpoint {checkpoint} ({ckpt.info.get('layout') and 'packed views' or 'single view'})")
    print(f"test speakers {', '.join(speakers)}: {len(saved.ids)} utterances ({len(paths)} files scored)")
    print(f"test UA from the cache (the fold's test)  {100 * unweighted_accuracy(saved.y, cached):.1f}")
    print(f"test UA from audio (ser predict)          {100 * unweighted_accuracy(saved.y, pred):.1f}")
    diff = np.abs(probs - saved.probs).max()
    print(f"same label {100 * agree:.1f}% of utterances; max |prob diff| {diff:.4f}")
    print(f"predict: {seconds:.1f} s for {len(paths)} files ({1000 * seconds / len(paths):.0f} ms per file)")
    return 0 if agree >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
