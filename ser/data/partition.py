"""Fixed folds from a file, so a result can be compared with a published leaderboard fold for fold.

`data.partition` names one of:
- a YAML or JSON file: `by: speaker` (or `utterance`) and `folds: [{test: [...], val: [...], train:
  [...]}, ...]`; `test` is required, `val` defaults to none and `train` to everything else;
- an EmoBox dataset folder (`fold_1/<name>_train_fold_1.jsonl`, `..._test_fold_1.jsonl`, optional
  `..._valid_fold_1.jsonl`; utterances by their `key`, e.g. `iemocap-Ses01F_impro01_F000`);
- `manifest`: the `split` column of a manifest corpus (one fold).

Speakers and utterances are named as the corpus names them, with or without the corpus prefix
(`03` or `emodb:03`; `03a01Fa`, `emodb:03a01Fa` or EmoBox's `emodb-03a01Fa`). The file is checked like
computed folds (`check_disjoint`): a speaker in two splits of a fold is refused, since such a fold is
not speaker-independent (EmoBox's EMO-DB folds are utterance splits and are refused for that reason).
Utterances an utterance partition lists nowhere are left out and reported as skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser.data.folds import VAL_FRACTION, Fold, FoldInvariantError, check_disjoint
from ser.data.types import CorpusError, Skipped, Utterance

MANIFEST = "manifest"
SPLITS = ("train", "val", "test")
EMOBOX_SPLITS = {"train": "train", "valid": "val", "test": "test"}


@dataclass(frozen=True)
class PartitionFold:
    """One fold as listed: ids per split; `train` None means every listed item not in val or test."""

    train: tuple[str, ...] | None
    val: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True)
class Partition:
    source: str  # where it came from, for messages
    by: str  # speaker | utterance
    folds: tuple[PartitionFold, ...]


def _fail(source: str, problem: str) -> CorpusError:
    return CorpusError(f"partition {source}: {problem}")


# ------------------------------------------------------------------------------------------- reading
def load_partition(name: str | Path) -> Partition:
    """A partition from a YAML/JSON file or an EmoBox folder; CorpusError naming the file otherwise."""
    path = Path(str(name)).expanduser()
    if path.is_dir():
        return _read_emobox(path)
    if not path.is_file():
        raise CorpusError(
            f"data.partition: {path} does not exist (a YAML/JSON fold file, an EmoBox folder or 'manifest')"
        )
    try:
        if path.suffix.lower() == ".json":
            content = json.loads(path.read_text())
        else:
            import yaml

            content = yaml.safe_load(path.read_text())
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError, OSError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(str(path), f"cannot read it: {first}") from None
    return _parse(content, str(path))


def _ids(value: Any, source: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise _fail(source, f"{where} must be a list of ids")
    return tuple(str(v) for v in value)


def _parse(content: Any, source: str) -> Partition:
    if isinstance(content, list):
        content = {"folds": content}
    if not isinstance(content, dict) or not isinstance(content.get("folds"), list) or not content["folds"]:
        raise _fail(source, "expected a mapping with a non-empty list `folds` (and `by: speaker|utterance`)")
    by = str(content.get("by", "speaker"))
    if by not in ("speaker", "utterance"):
        raise _fail(source, f"by: {by!r} must be speaker or utterance")
    folds = []
    for i, item in enumerate(content["folds"]):
        if not isinstance(item, dict) or not item.get("test"):
            raise _fail(source, f"fold {i} must be a mapping with a non-empty `test` list")
        unknown = set(item) - set(SPLITS)
        if unknown:
            raise _fail(source, f"fold {i} has unknown key(s) {sorted(unknown)}; use train, val, test")
        train = _ids(item["train"], source, f"fold {i} train") if "train" in item else None
        folds.append(
            PartitionFold(
                train,
                _ids(item.get("val"), source, f"fold {i} val"),
                _ids(item["test"], source, f"fold {i} test"),
            )
        )
    return Partition(source=source, by=by, folds=tuple(folds))


def _emobox_files(folder: Path, n: int) -> dict[str, Path]:
    found = {}
    for split in EMOBOX_SPLITS:
        for pattern in (f"*_{split}_fold_{n}.jsonl", f"*_{split}_fold{n}.jsonl"):
            matches = sorted(folder.glob(pattern))
            if matches:
                found[split] = matches[0]
                break
    return found


def _read_keys(path: Path) -> tuple[str, ...]:
    keys = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            keys.append(str(json.loads(line)["key"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise _fail(str(path), f"line {number} is not a JSON object with a `key`") from None
    return tuple(keys)


def _read_emobox(root: Path) -> Partition:
    """EmoBox's `fold_N/<name>_{train,valid,test}_fold_N.jsonl`, folds in N order."""
    numbered = []
    for folder in root.iterdir():
        match = re.fullmatch(r"fold_?(\d+)", folder.name)
        if folder.is_dir() and match:
            numbered.append((int(match.group(1)), folder))
    if not numbered:
        raise _fail(str(root), "no fold_N folders (an EmoBox dataset folder holds fold_1/, fold_2/, ...)")
    folds = []
    for n, folder in sorted(numbered):
        files = _emobox_files(folder, n)
        if "train" not in files or "test" not in files:
            raise _fail(str(folder), f"needs *_train_fold_{n}.jsonl and *_test_fold_{n}.jsonl")
        val = _read_keys(files["valid"]) if "valid" in files else ()
        folds.append(PartitionFold(_read_keys(files["train"]), val, _read_keys(files["test"])))
    return Partition(source=str(root), by="utterance", folds=tuple(folds))


def manifest_partition(utterances: Sequence[Utterance]) -> Partition:
    """One fold from the manifest's `split` column (every utterance needs one)."""
    missing = [u.id for u in utterances if u.split is None]
    if missing:
        raise CorpusError(
            f"data.partition=manifest needs a split (train/val/test) on every row; {len(missing)} have none, "
            f"e.g. {missing[:3]}"
        )
    by_split = {s: tuple(u.id for u in utterances if u.split == s) for s in SPLITS}
    if not by_split["test"]:
        raise CorpusError("data.partition=manifest: no row has split 'test'")
    fold = PartitionFold(by_split["train"], by_split["val"], by_split["test"])
    return Partition(source="manifest split column", by="utterance", folds=(fold,))


# ----------------------------------------------------------------------------------------- resolving
class _Names:
    """Resolves the ways a file may name a speaker or an utterance to the dataset's own ids."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.lookup: dict[str, str] = {}
        ambiguous: set[str] = set()
        for full in ids:
            self.lookup[full] = full
            corpus, _, bare = full.partition(":")
            for alias in (bare, f"{corpus}-{bare}"):
                if alias in self.lookup and self.lookup[alias] != full:
                    ambiguous.add(alias)
                self.lookup.setdefault(alias, full)
        for alias in ambiguous:
            del self.lookup[alias]  # two corpora share it: only the prefixed form is accepted

    def resolve(self, names: Iterable[str], source: str, what: str) -> tuple[str, ...]:
        resolved, unknown = [], []
        for name in names:
            full = self.lookup.get(name)
            (unknown if full is None else resolved).append(name if full is None else full)
        if unknown:
            hint = " (quote ids such as '03' in YAML)" if any(u.isdigit() for u in unknown) else ""
            raise _fail(source, f"{len(unknown)} {what}(s) not in the data, e.g. {unknown[:5]}{hint}")
        return tuple(resolved)


def _checked(
    source: str, index: int, splits: dict[str, Sequence[str]], universe: Iterable[str], what: str
) -> None:
    """check_disjoint with the file named: a leak in a file is the user's to fix, not a bug."""
    try:
        check_disjoint(splits, universe, f"fold {index}")
    except FoldInvariantError as exc:
        raise _fail(source, f"{what}: {exc}") from None


def partition_folds(
    partition: Partition, utterances: Sequence[Utterance]
) -> tuple[list[Fold], list[Utterance], list[Skipped]]:
    """(speaker folds, the utterances the partition uses, the ones it leaves out as skipped).

    Every fold is checked: no speaker (or utterance) in two of its splits, every used speaker in one."""
    source = partition.source
    speaker_of = {u.id: u.speaker for u in utterances}
    if partition.by == "utterance":
        names = _Names(speaker_of)
        listed: list[dict[str, tuple[str, ...] | None]] = []
        for f in partition.folds:
            listed.append(
                {
                    "train": None if f.train is None else names.resolve(f.train, source, "utterance"),
                    "val": names.resolve(f.val, source, "utterance"),
                    "test": names.resolve(f.test, source, "utterance"),
                }
            )
        used = {u for fold in listed for ids in fold.values() if ids is not None for u in ids}
        kept = [u for u in utterances if u.id in used]
        dropped = [Skipped(u.path, f"not in the partition {source}") for u in utterances if u.id not in used]
        folds = []
        for i, fold in enumerate(listed):
            held = set(fold["val"]) | set(fold["test"])  # type: ignore[arg-type]
            train = fold["train"] if fold["train"] is not None else tuple(sorted(used - held))
            items = {"train": train, "val": fold["val"], "test": fold["test"]}
            _checked(source, i, items, used, "utterances")  # type: ignore[arg-type]
            spk = {name: sorted({speaker_of[u] for u in ids}) for name, ids in items.items()}  # type: ignore[union-attr]
            _checked(source, i, spk, {speaker_of[u] for u in used}, "a speaker-dependent split")
            folds.append(_fold(i, spk, source))
        return folds, kept, dropped
    names = _Names(sorted(set(speaker_of.values())))
    speakers = set(speaker_of.values())
    folds = []
    for i, f in enumerate(partition.folds):
        val, test = names.resolve(f.val, source, "speaker"), names.resolve(f.test, source, "speaker")
        if f.train is None:
            train = tuple(sorted(speakers - set(val) - set(test)))
        else:
            train = names.resolve(f.train, source, "speaker")
        spk = {"train": sorted(train), "val": sorted(val), "test": sorted(test)}
        _checked(source, i, spk, speakers, "speakers")
        folds.append(_fold(i, spk, source))
    return folds, list(utterances), []


def _fold(index: int, speakers: dict[str, list[str]], source: str) -> Fold:
    if not speakers["train"]:
        raise _fail(source, f"fold {index} has no training speakers")
    warnings = []
    if not speakers["val"]:
        warnings.append(
            f"no validation speakers in the partition: validation is a stratified {VAL_FRACTION:.0%} of the "
            "train speakers' utterances (NOT speaker-independent; the test split is)"
        )
    return Fold(
        index=index,
        train=tuple(speakers["train"]),
        val=tuple(speakers["val"]),
        test=tuple(speakers["test"]),
        warnings=tuple(warnings),
    )


def resolve_partition(name: str, utterances: Sequence[Utterance]) -> Partition:
    """`data.partition` -> Partition: "manifest" reads the split column, anything else a file."""
    if str(name).strip().lower() == MANIFEST:
        return manifest_partition(utterances)
    return load_partition(name)
