"""Speaker-independent folds: a pure function of (speakers, k, seed) that checks its own invariant.

Emotion corpora have few speakers and many utterances each, so a random utterance split lets the model
recognise voices instead of emotions and inflates accuracy. Every split here is made over speaker ids;
the only exception (too few speakers for a validation group) is flagged in `Fold.warnings`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ser.config import ConfigError

VAL_FRACTION = 0.15  # share of train-speaker utterances used as validation when no speaker is left


class FoldInvariantError(RuntimeError):
    """A split put one speaker (or utterance) in two places, or lost one: a bug, never a user error."""


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold as speaker ids; `warnings` say where it is not speaker-independent.

    `held_out` speakers (data.holdout) belong to no split of this fold: no training, validation or test
    number of the fold has seen them. With held-out speakers the CV folds have no test split at all; the
    held-out speakers are scored once, by `holdout_fold`."""

    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    held_out: tuple[str, ...] = ()


def check_disjoint(
    splits: Mapping[str, Iterable[Hashable]], universe: Iterable[Hashable] | None = None, where: str = ""
) -> None:
    """Raise FoldInvariantError if an item is in two splits, repeated in one, or (given `universe`)
    if the splits do not cover exactly the universe. Used for speaker ids and utterance indices."""
    at = f" in {where}" if where else ""
    owner: dict[Hashable, str] = {}
    for name, items in splits.items():
        for item in items:
            if item in owner:
                raise FoldInvariantError(f"{item!r} is in both {owner[item]} and {name}{at}")
            owner[item] = name
    if universe is not None:
        expected = set(universe)
        missing = expected - owner.keys()
        extra = owner.keys() - expected
        if missing or extra:
            raise FoldInvariantError(
                f"splits{at} do not cover the set exactly: missing {sorted(map(str, missing))[:5]}, "
                f"unknown {sorted(map(str, extra))[:5]}"
            )


def _groups(speakers: list[str], k: int, seed: int, genders: Mapping[str, str | None]) -> list[list[str]]:
    """Deal speakers into k groups, each gender shuffled separately then dealt round-robin.

    The dealing position carries over from one gender to the next, so group sizes differ by at most one
    and every group gets a similar male/female mix (24 RAVDESS actors, k=6: 2m+2f each).
    """
    rng = np.random.default_rng(seed)
    by_gender: dict[str, list[str]] = {}
    for spk in speakers:  # `speakers` is sorted, so each list is too before shuffling
        g = genders.get(spk)
        by_gender.setdefault(str(g).lower() if g else "?", []).append(spk)
    groups: list[list[str]] = [[] for _ in range(k)]
    pos = 0
    for gender in sorted(by_gender, key=lambda g: (g == "?", g)):  # unknown gender dealt last
        members = by_gender[gender]
        for j in rng.permutation(len(members)):
            groups[pos % k].append(members[j])
            pos += 1
    return [sorted(g) for g in groups]


def speaker_groups(
    speakers: Sequence[str], k: int, seed: int = 0, genders: Mapping[str, str | None] | None = None
) -> list[list[str]]:
    """The k gender-balanced speaker groups the folds test (one speaker each when k >= the speakers)."""
    ids = sorted({str(s) for s in speakers})
    if k < 2:
        raise ValueError(f"{k} groups: need at least 2")
    if k >= len(ids):
        return [[s] for s in ids]
    return _groups(ids, k, seed, genders or {})


def speaker_folds(
    speakers: Sequence[str],
    k: int,
    val_folds: int = 1,
    seed: int = 0,
    genders: Mapping[str, str | None] | None = None,
    held_out: Sequence[str] = (),
) -> list[Fold]:
    """Split speakers into k folds; fold i tests group i, validates on the next `val_folds` groups.

    With `held_out` speakers (reserved for one final test), folds are made over the other speakers and
    have no test split: fold i validates on group i (and the next val_folds - 1) and trains on the rest.

    k = 0 or k >= number of speakers means leave-one-speaker-out (LOSO, folds in sorted speaker order,
    so the seed does not matter there). With LOSO and too few speakers for `val_folds` validation
    speakers plus one train speaker (TESS has two), the validation groups shrink, possibly to none, and
    the fold says so in `warnings`: `split_utterances` then takes validation utterances from the train
    speakers. The result depends only on the set of speakers, k, val_folds, seed and genders.
    """
    held = tuple(sorted({str(s) for s in held_out}))
    every = sorted({str(s) for s in speakers})
    if held:
        return _train_val_folds([s for s in every if s not in held], k, val_folds, seed, genders or {}, held)
    ids = every  # a set: repeats (one per utterance) are harmless
    n = len(ids)
    if n < 2:
        raise ValueError(f"speaker-independent folds need at least 2 speakers, got {n}")
    if k < 0 or k == 1:
        raise ValueError(f"data.folds={k} is invalid: use 0 (leave one speaker out) or 2..{n}")
    if val_folds < 0:
        raise ValueError(f"data.val_folds={val_folds} must be >= 0")
    loso = k == 0 or k >= n
    warnings: list[str] = []
    if loso:
        k = n
        groups = [[s] for s in ids]
        if val_folds > k - 2:
            warnings.append(
                f"only {n} speakers: {k - 2} validation speaker(s) per fold instead of data.val_folds="
                f"{val_folds}, so that one speaker is left for training"
            )
            val_folds = k - 2
    else:
        if val_folds > k - 2:
            raise ValueError(
                f"data.val_folds={val_folds} with data.folds={k} leaves no training fold "
                f"(need val_folds <= folds - 2)"
            )
        groups = _groups(ids, k, seed, genders or {})
    if val_folds == 0:
        warnings.append(
            "no validation speakers: validation is a stratified "
            f"{VAL_FRACTION:.0%} of the train speakers' utterances (NOT speaker-independent)"
        )
    folds = []
    for i in range(k):
        val_idx = {(i + j) % k for j in range(1, val_folds + 1)}
        fold = Fold(
            index=i,
            train=tuple(sorted(s for j in range(k) if j != i and j not in val_idx for s in groups[j])),
            val=tuple(sorted(s for j in sorted(val_idx) for s in groups[j])),
            test=tuple(groups[i]),
            warnings=tuple(warnings),
        )
        check_disjoint({"train": fold.train, "val": fold.val, "test": fold.test}, ids, f"fold {i}")
        if not fold.train:
            raise FoldInvariantError(f"fold {i} has no training speakers")
        folds.append(fold)
    check_disjoint({f"test of fold {f.index}": f.test for f in folds}, ids, "the test groups")
    return folds


def _train_val_folds(
    ids: list[str],
    k: int,
    val_folds: int,
    seed: int,
    genders: Mapping[str, str | None],
    held: tuple[str, ...],
) -> list[Fold]:
    """Folds over the speakers left after holding some out: validation groups and training, no test."""
    n = len(ids)
    if n < 2:
        raise ValueError(
            f"holding out {len(held)} speakers leaves {n}: at least 2 are needed to train and validate"
        )
    if k < 0 or k == 1:
        raise ValueError(f"data.folds={k} is invalid: use 0 (one speaker per fold) or 2..{n}")
    k = n if k == 0 or k >= n else k
    val_folds = max(1, val_folds)
    if val_folds > k - 1:
        raise ValueError(f"data.val_folds={val_folds} with data.folds={k} leaves no training group")
    groups = _groups(ids, k, seed, genders)
    folds = []
    for i in range(k):
        val_idx = {(i + j) % k for j in range(val_folds)}
        fold = Fold(
            index=i,
            train=tuple(sorted(s for j in range(k) if j not in val_idx for s in groups[j])),
            val=tuple(sorted(s for j in sorted(val_idx) for s in groups[j])),
            test=(),
            held_out=held,
        )
        check_disjoint({"train": fold.train, "val": fold.val, "held out": held}, [*ids, *held], f"fold {i}")
        folds.append(fold)
    check_disjoint(
        {f"validation of fold {f.index}": f.val for f in folds[: k // val_folds * val_folds : val_folds]}
    )
    return folds


def holdout_fold(folds: Sequence[Fold]) -> Fold:
    """The one final split: fold 0's training and validation speakers, tested on the held-out speakers."""
    first = folds[0]
    if not first.held_out:
        raise ValueError("no speakers are held out (set data.holdout.speakers or data.holdout.fraction)")
    return Fold(index=0, train=first.train, val=first.val, test=first.held_out)


def choose_held_out(
    speakers: Sequence[str],
    genders: Mapping[str, str | None],
    wanted: Sequence[str],
    fraction: float,
    seed: int,
) -> list[str]:
    """The speakers to hold out: those named (by full id `corpus:id` or the corpus's own id, e.g. `01`), or
    `fraction` of them, alternating genders (seeded), at least one and leaving at least two."""
    ids = sorted({str(s) for s in speakers})
    if wanted:
        by_short: dict[str, list[str]] = {}
        for s in ids:
            by_short.setdefault(s.rsplit(":", 1)[-1], []).append(s)
        chosen = []
        for name in wanted:
            name = str(name)
            matches = [name] if name in ids else by_short.get(name, [])
            if len(matches) != 1:
                problem = "matches several speakers" if matches else "is not a speaker of this corpus"
                raise ConfigError(
                    f"invalid config key 'data.holdout.speakers': {name!r} {problem} "
                    f"(speakers: {', '.join(ids)})"
                )
            chosen.append(matches[0])
        return sorted(set(chosen))
    if fraction <= 0:
        return []
    count = max(1, round(fraction * len(ids)))
    if count > len(ids) - 2:  # used to be cut down silently: fraction 1.0 held out all but two speakers
        raise ConfigError(
            f"invalid config key 'data.holdout.fraction': {fraction:g} of {len(ids)} speakers holds out "
            f"{count}, leaving {len(ids) - count}; at least 2 must stay to train and validate on "
            f"(at most {(len(ids) - 2) / len(ids):.2f} here)"
        )
    rng = np.random.default_rng(seed)
    by_gender: dict[str, list[str]] = {}
    for spk in ids:
        by_gender.setdefault(str(genders.get(spk) or "?").lower(), []).append(spk)
    queues = [[members[j] for j in rng.permutation(len(members))] for _, members in sorted(by_gender.items())]
    chosen: list[str] = []
    while len(chosen) < count:  # one of each gender in turn: a balanced held-out set
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return sorted(chosen)


def split_utterances(
    utterances: Sequence[object],
    fold: Fold,
    labels: Sequence[str] | None = None,
    seed: int = 0,
    val_fraction: float = VAL_FRACTION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map a fold's speakers to sorted int index arrays (train, val, test) over `utterances`.

    `utterances` holds objects with a `.speaker` (and `.label`) attribute, or plain speaker ids. When the
    fold has no validation speakers, a label-stratified `val_fraction` of the train utterances becomes
    validation (seeded); `fold.warnings` already records that this validation is speaker-dependent.
    """
    speakers = [str(getattr(u, "speaker", u)) for u in utterances]
    where = {
        s: name
        for name, group in (
            ("train", fold.train),
            ("val", fold.val),
            ("test", fold.test),
            ("held", fold.held_out),
        )
        for s in group
    }
    unknown = sorted(set(speakers) - where.keys())
    if unknown:
        raise ValueError(f"utterances of speaker(s) {unknown[:5]} are in no split of fold {fold.index}")
    idx: dict[str, list[int]] = {"train": [], "val": [], "test": [], "held": []}
    for i, spk in enumerate(speakers):
        idx[where[spk]].append(i)
    train, val, test = (np.asarray(idx[s], dtype=np.int64) for s in ("train", "val", "test"))
    held = idx["held"]  # in no split: reserved for the final test
    if not fold.val:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction={val_fraction} must be in (0, 1)")
        if labels is None:
            labels = [str(getattr(u, "label", "")) for u in utterances]
        if len(labels) != len(utterances):
            raise ValueError(f"{len(labels)} labels for {len(utterances)} utterances")
        rng = np.random.default_rng(seed)
        train_labels = np.asarray([labels[i] for i in train])
        picked = []
        for label in sorted(set(train_labels.tolist())):
            members = train[train_labels == label]
            n_val = max(1, round(val_fraction * len(members))) if len(members) >= 2 else 0
            picked.append(members[rng.permutation(len(members))[:n_val]])
        val = np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)
        train = np.setdiff1d(train, val)
    check_disjoint(
        {"train": train.tolist(), "val": val.tolist(), "test": test.tolist(), "held out": held},
        range(len(utterances)),
        f"utterances of fold {fold.index}",
    )
    return train, val, test


def parse_fold(value: str | int, k: int) -> list[int]:
    """`data.fold` -> fold indices: "all" -> 0..k-1, "3" -> [3]."""
    text = str(value).strip().lower()
    if text == "all":
        return list(range(k))
    try:
        index = int(text)
    except ValueError:
        raise ConfigError(f"data.fold={value!r} is not a fold index or 'all'") from None
    if not 0 <= index < k:
        raise ConfigError(f"data.fold={index} is out of range: there are {k} folds (0..{k - 1})")
    return [index]


def session_groups(utterances: Sequence[Any]) -> dict[str, str]:
    """speaker -> session of utterances with `.speaker` and `.session`; ConfigError when an utterance
    has no session or a speaker was recorded in two (a session fold would then split a speaker)."""
    groups: dict[str, str] = {}
    missing: set[str] = set()
    for utt in utterances:
        speaker, session = str(utt.speaker), getattr(utt, "session", None)
        if session is None:
            missing.add(speaker)
            continue
        if groups.setdefault(speaker, str(session)) != str(session):
            raise ConfigError(
                f"invalid config key 'data.fold_by': speaker {speaker} is in sessions {groups[speaker]} and "
                f"{session}, so leaving a session out would split the speaker; use data.fold_by=speaker"
            )
    if missing:
        raise ConfigError(
            "invalid config key 'data.fold_by': 'session' needs a session for every utterance (iemocap, or a "
            f"manifest with a session column); speakers without one: {sorted(missing)[:5]}"
        )
    return groups


def group_folds(groups: Mapping[str, str], k: int, val_folds: int = 1, seed: int = 0) -> list[Fold]:
    """Folds over groups of speakers (IEMOCAP sessions): `speaker_folds` over the group ids, each group
    then expanded to its speakers, and the speaker-level invariant checked again.

    k = 0 leaves one group out (leave-one-session-out). Genders do not steer the dealing: a session holds
    both."""
    members: dict[str, list[str]] = {}
    for speaker, group in groups.items():
        members.setdefault(str(group), []).append(str(speaker))
    group_level = speaker_folds(sorted(members), k, val_folds, seed)
    folds = []
    for f in group_level:

        def expand(ids: Sequence[str]) -> tuple[str, ...]:
            return tuple(sorted(s for g in ids for s in members[g]))

        fold = Fold(
            index=f.index,
            train=expand(f.train),
            val=expand(f.val),
            test=expand(f.test),
            warnings=tuple(w.replace("speaker", "session") for w in f.warnings),
        )
        check_disjoint({"train": fold.train, "val": fold.val, "test": fold.test}, groups, f"fold {f.index}")
        folds.append(fold)
    check_disjoint({f"test of fold {f.index}": f.test for f in folds}, groups, "the test groups")
    return folds
