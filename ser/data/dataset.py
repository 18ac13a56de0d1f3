"""Merging corpora into one labelled dataset with one label vocabulary.

Labels are harmonised per corpus (spec.label_map), then globally (data.label_map). Utterances outside
`data.labels` are listed as skipped, never dropped silently, and a label missing from one of the merged
corpora is a warning, since it makes per-corpus results incomparable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from ser.config import CorpusSpec, DataConfig, SyntheticConfig
from ser.data.corpora import as_spec, scan_corpus
from ser.data.labels import canonical_label, rare_label_warnings, sort_labels
from ser.data.types import CorpusError, Skipped, Utterance


@dataclass
class LabelledDataset:
    """Usable utterances, the label vocabulary (index = class id) and everything left out, with why."""

    utterances: list[Utterance]
    labels: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def label_index(self, utt: Utterance) -> int:
        try:
            return self.labels.index(utt.label)
        except ValueError:
            raise ValueError(f"{utt.id}: label {utt.label!r} is not one of {self.labels}") from None

    def speakers(self) -> list[str]:
        return sorted({utt.speaker for utt in self.utterances})


def _norm(label: str) -> str:
    return canonical_label(label) or str(label).strip()


def _label_map(mapping: Optional[Mapping[str, str]]) -> dict[str, str]:
    return {_norm(k): _norm(v) for k, v in (mapping or {}).items()}


def _specs(data_cfg: DataConfig) -> list[CorpusSpec]:
    if data_cfg.corpora:
        return [as_spec(spec) for spec in data_cfg.corpora]
    return [
        CorpusSpec(
            name=data_cfg.corpus,
            root=data_cfg.root,
            speaker_regex=data_cfg.speaker_regex,
            subset=getattr(data_cfg, "subset", None),
        )
    ]


def _synthetic(node: Any) -> Optional[SyntheticConfig]:
    if isinstance(node, DictConfig):
        return SyntheticConfig(**OmegaConf.to_container(node, resolve=True))  # type: ignore[arg-type]
    return node


def _tags(specs: list[CorpusSpec]) -> list[str]:
    """Corpus tags, numbered (folder#1, folder#2) when a name repeats so speakers stay distinct."""
    counts = Counter(spec.name for spec in specs)
    seen: Counter[str] = Counter()
    tags = []
    for spec in specs:
        seen[spec.name] += 1
        tags.append(spec.name if counts[spec.name] == 1 else f"{spec.name}#{seen[spec.name]}")
    return tags


def _retag(utt: Utterance, tag: str) -> Utterance:
    if tag == utt.corpus:
        return utt
    cut = len(utt.corpus)
    session = None if utt.session is None else tag + utt.session[cut:]
    return replace(utt, id=tag + utt.id[cut:], speaker=tag + utt.speaker[cut:], corpus=tag, session=session)


def _wanted_labels(labels: Optional[list[str]]) -> Optional[list[str]]:
    if labels is None:
        return None
    wanted = list(dict.fromkeys(_norm(label) for label in labels))
    if not wanted:
        raise ValueError("data.labels is an empty list; leave it unset (null) to use every label found")
    return wanted


def build_dataset(data_cfg: DataConfig, check_audio: bool = True, progress: bool = False) -> LabelledDataset:
    """Scan every configured corpus, harmonise labels, and merge; CorpusError when nothing is usable."""
    specs = _specs(data_cfg)
    global_map = _label_map(data_cfg.label_map)
    wanted = _wanted_labels(list(data_cfg.labels) if data_cfg.labels is not None else None)
    synthetic = _synthetic(data_cfg.synthetic)

    candidates: list[Utterance] = []
    skipped: list[Skipped] = []
    warnings: list[str] = []
    for spec, tag in zip(specs, _tags(specs), strict=True):
        scan = scan_corpus(spec, check_audio=check_audio, progress=progress, synthetic=synthetic)
        skipped.extend(scan.skipped)
        warnings.extend(scan.warnings)
        corpus_map = _label_map(spec.label_map)
        for utt in scan.utterances:
            mapped = corpus_map.get(utt.label, utt.label)
            mapped = global_map.get(mapped, mapped)
            candidates.append(_retag(replace(utt, label=mapped) if mapped != utt.label else utt, tag))

    labels = wanted if wanted is not None else sort_labels(u.label for u in candidates)
    allowed = set(labels)
    utterances = []
    for utt in candidates:
        if utt.label in allowed:
            utterances.append(utt)
        else:
            skipped.append(Skipped(utt.path, f"label '{utt.label}' not in data.labels {labels}"))
    if not utterances:
        found = sort_labels(u.label for u in candidates)
        raise CorpusError(
            f"no usable utterances in {', '.join(_tags(specs))}: labels found {found}, data.labels {labels}"
        )
    warnings.extend(_absent_label_warnings(utterances, labels, _tags(specs)))
    if wanted is None:  # labels taken as found: a typo is a class of its own
        first = {u.label: u.path for u in reversed(utterances)}
        warnings.extend(rare_label_warnings(Counter(u.label for u in utterances), first))
    return LabelledDataset(utterances=utterances, labels=labels, skipped=skipped, warnings=warnings)


def _absent_label_warnings(utterances: list[Utterance], labels: list[str], tags: list[str]) -> list[str]:
    present = {tag: set() for tag in tags}  # type: dict[str, set[str]]
    for utt in utterances:
        present[utt.corpus].add(utt.label)
    anywhere = set().union(*present.values())
    warnings = []
    nowhere = [label for label in labels if label not in anywhere]
    if nowhere:
        warnings.append(f"labels {nowhere} in data.labels have no utterances in any corpus")
    if len(tags) > 1:
        for tag in tags:
            missing = [label for label in labels if label in anywhere and label not in present[tag]]
            if missing:
                warnings.append(f"corpus {tag} has no utterances labelled {', '.join(missing)}")
    return warnings
