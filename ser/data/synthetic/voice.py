"""The voice synthesiser: procedural emotional speech for the embedded default corpus and the tests.

Nothing is ever downloaded. Each utterance is a source-filter synthesis: an LF-like glottal pulse train
with a pitch contour (declination, per-syllable accents, a final rise or fall), jitter, shimmer and creak,
plus aspiration and fricative noise, shaped by a time-varying vocal tract (8 resonances; F1-F3 follow a
vowel per syllable) in the STFT domain. Emotion classes differ along the acoustic correlates reported by
Scherer (2003) and Juslin & Laukka (2003): mean F0, F0 range, tempo, intensity, spectral tilt, voice
quality. Speakers differ in base pitch, vocal-tract length, tilt and breathiness, so speaker identity is
a real nuisance factor and speaker-independent folds mean something. Per-utterance randomness (scaled
by `SyntheticConfig.variability`), including how strongly the emotion is expressed, makes classes
overlap.

Every utterance comes from its own numpy Generator seeded by (seed, speaker, label, index), so audio is
bit-identical for a given config and adding speakers, labels or utterances never changes existing ones.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from tqdm import tqdm

from ser.config import ConfigError, SyntheticConfig
from ser.data.labels import CANONICAL_LABELS

GENERATOR_VERSION = 1  # bump when the audio changes, so cached corpora are regenerated
SPEAKER_REGEX = r"^(?P<speaker>s\d+)-(?P<gender>[mf])-"
PEAK = 0.9
CONTROL_RATE = 1000.0  # Hz: F0 and energy contours are computed at this rate and interpolated

_TAG_SPEAKER = 0x5BEA
_TAG_UTTERANCE = 0x0773
_TAG_STYLE = 0x57E1


@dataclass(frozen=True)
class SynthUtterance:
    """One generated recording with the metadata the folder naming encodes."""

    speaker: str
    gender: str
    label: str
    index: int
    wave: np.ndarray


# --------------------------------------------------------------------------------------------------
# Emotion profiles and speakers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmotionProfile:
    """Acoustic targets of one emotion, as ratios/offsets around the speaker's own voice."""

    f0_ratio: float  # mean F0 relative to the speaker's base F0
    accent_st: float  # per-syllable accent height (F0 range), semitones
    accent_prob: float  # share of syllables carrying an accent
    declination_st: float  # F0 change over the utterance, semitones
    final_st: float  # extra movement on the last syllable (surprise rises, disgust falls)
    drift_st: float  # slow random F0 wander (irregularity), semitones
    tremor_st: float  # 5-8 Hz F0 tremor depth, semitones
    rate: float  # syllables per second
    rhythm_k: float  # gamma shape of syllable durations: small = irregular rhythm
    pause_prob: float  # chance of a pause after a syllable
    pause_scale: float  # pause length multiplier
    level_db: float  # loudness relative to neutral
    tilt_db: float  # extra spectral slope, dB/octave above 500 Hz (less negative = flatter)
    return_phase: float  # LF return phase as a fraction of the period: short = abrupt closure, flat tilt
    open_quotient: float  # glottal open quotient: high = breathy, lax; low = pressed
    breath: float  # aspiration noise relative to voicing
    jitter: float  # per-cycle relative F0 perturbation (sd)
    shimmer: float  # per-cycle log-amplitude perturbation (sd)
    creak_prob: float  # share of creaky (low, irregular, period-alternating) syllables
    formant_scale: float  # all formants (lip spreading in smiling raises them)
    f1_scale: float  # jaw opening in loud speech raises F1
    centralize: float  # vowel reduction toward schwa
    bandwidth: float  # formant bandwidth multiplier (breathy voices have wider bandwidths)


# One column per canonical label; rows are EmotionProfile fields. Read across a row to see the contrast:
# e.g. angry: high F0, wide range, fast, loud, flat tilt, pressed voice; sad: low F0, narrow range, slow,
# soft, steep tilt, breathy; disgust: low, slow, creaky, falling; surprised: high with a final rise.
_COLUMNS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
# fmt: off
_PROFILE_TABLE: dict[str, tuple[float, ...]] = {
    #                neutral   calm  happy    sad  angry fearful disgust surprised
    "f0_ratio":       (1.00,  0.95,  1.22,  0.92,  1.30,  1.38,  0.88,  1.30),
    "accent_st":      (3.0,   2.0,   6.5,   1.5,   6.5,   4.0,   3.0,   7.5),
    "accent_prob":    (0.40,  0.30,  0.55,  0.25,  0.60,  0.50,  0.35,  0.50),
    "declination_st": (-2.5,  -1.5,  -1.5,  -1.5,  -3.0,  -0.5,  -4.0,  -1.0),
    "final_st":       (-1.5,  -1.5,  0.5,   -1.0,  -2.0,  1.5,   -4.0,  7.0),
    "drift_st":       (0.5,   0.3,   0.8,   0.3,   0.8,   1.5,   0.6,   0.8),
    "tremor_st":      (0.10,  0.05,  0.10,  0.15,  0.10,  0.60,  0.10,  0.10),
    "rate":           (4.5,   3.9,   5.0,   3.3,   5.4,   5.6,   3.6,   4.7),
    "rhythm_k":       (10.0,  12.0,  8.0,   8.0,   9.0,   4.0,   8.0,   8.0),
    "pause_prob":     (0.15,  0.25,  0.10,  0.35,  0.08,  0.30,  0.25,  0.12),
    "pause_scale":    (1.0,   1.2,   0.9,   1.4,   0.8,   0.9,   1.2,   1.0),
    "level_db":       (0.0,   -4.0,  3.0,   -6.0,  8.0,   1.0,   -1.0,  3.0),
    "tilt_db":        (-2.0,  -3.0,  -1.0,  -5.0,  2.0,   -1.5,  -2.5,  -1.0),
    "return_phase":   (0.025, 0.032, 0.020, 0.045, 0.010, 0.025, 0.030, 0.020),
    "open_quotient":  (0.60,  0.65,  0.55,  0.72,  0.45,  0.62,  0.60,  0.55),
    "breath":         (0.04,  0.07,  0.04,  0.12,  0.03,  0.10,  0.07,  0.05),
    "jitter":         (0.006, 0.005, 0.008, 0.009, 0.012, 0.022, 0.020, 0.008),
    "shimmer":        (0.04,  0.03,  0.05,  0.06,  0.06,  0.09,  0.12,  0.05),
    "creak_prob":     (0.03,  0.04,  0.02,  0.06,  0.02,  0.02,  0.30,  0.02),
    "formant_scale":  (1.00,  1.00,  1.04,  0.98,  1.00,  1.02,  0.98,  1.03),
    "f1_scale":       (1.00,  0.98,  1.02,  0.95,  1.08,  1.00,  1.00,  1.05),
    "centralize":     (0.00,  0.15,  0.00,  0.30,  0.00,  0.10,  0.10,  0.00),
    "bandwidth":      (1.00,  1.15,  1.00,  1.30,  0.90,  1.10,  1.00,  1.00),
}
# fmt: on
PROFILES: dict[str, EmotionProfile] = {
    label: EmotionProfile(**{name: row[i] for name, row in _PROFILE_TABLE.items()})
    for i, label in enumerate(_COLUMNS)
}
assert set(PROFILES) == set(CANONICAL_LABELS), "every canonical label needs a synthetic profile"

# F1-F3 (Hz) of an adult male vowel set (Peterson & Barney 1952); the speaker's tract length scales them.
# fmt: off
VOWELS = np.array([
    [270, 2290, 3010], [390, 1990, 2550], [530, 1840, 2480], [660, 1720, 2410], [730, 1090, 2440],
    [570, 840, 2410], [440, 1020, 2240], [300, 870, 2240], [640, 1190, 2390], [490, 1350, 1690],
], dtype=np.float64)  # i I E ae A O U u V 3r
# fmt: on
SCHWA = np.array([500.0, 1500.0, 2500.0])
UPPER_FORMANTS = np.array([3500.0, 4500.0, 5500.0, 6500.0, 7500.0])  # uniform-tube resonances F4-F8
BANDWIDTHS = np.array([60.0, 80.0, 120.0, 175.0, 250.0, 300.0, 350.0, 400.0])


@dataclass(frozen=True)
class Speaker:
    """A synthetic talker: the nuisance factors that speaker-independent folds must generalise over."""

    gender: str
    f0: float  # base F0, Hz
    tract: float  # formant scale (shorter vocal tract = higher formants)
    tilt_db: float
    breath: float  # multiplier
    voice_noise: float  # jitter/shimmer multiplier
    tempo: float  # multiplier
    level_db: float
    open_quotient: float  # offset
    range_scale: float  # F0 range multiplier
    expressiveness: float  # how far this talker pushes emotions away from neutral


def _entropy(seed: int) -> int:
    return int(seed) % (1 << 64)


def speaker_gender(speaker_idx: int) -> str:
    """Genders alternate m, f, m, f so that RAVDESS-style odd actors are male."""
    return "m" if speaker_idx % 2 == 0 else "f"


def make_speaker(seed: int, speaker_idx: int) -> Speaker:
    """Speaker traits depend only on (seed, index): adding speakers leaves earlier ones unchanged."""
    if speaker_idx < 0:
        raise ValueError(f"speaker index must be >= 0, got {speaker_idx}")
    rng = np.random.default_rng(np.random.SeedSequence([_TAG_SPEAKER, _entropy(seed), speaker_idx]))
    gender = speaker_gender(speaker_idx)
    male = gender == "m"
    return Speaker(
        gender=gender,
        f0=float(rng.uniform(100, 140) if male else rng.uniform(180, 240)),
        tract=float(rng.uniform(0.95, 1.05) if male else rng.uniform(1.12, 1.22)),
        tilt_db=float(rng.normal(0.0, 1.5)),
        breath=float(np.exp(rng.normal(0.0, 0.35)) * (1.0 if male else 1.3)),
        voice_noise=float(np.exp(rng.normal(0.0, 0.25))),
        tempo=float(np.exp(rng.normal(0.0, 0.08))),
        level_db=float(rng.normal(0.0, 2.0)),
        open_quotient=float(rng.normal(0.0, 0.04) + (0.0 if male else 0.05)),
        range_scale=float(np.exp(rng.normal(0.0, 0.2))),
        expressiveness=float(np.exp(rng.normal(0.0, 0.2))),
    )


def speaker_ids(cfg: SyntheticConfig) -> list[str]:
    """`s01`, `s02`, ... (wider numbers past 99)."""
    return _speaker_names(int(cfg.speakers))


def _speaker_names(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"s{i + 1:0{width}d}" for i in range(n)]


def check_config(cfg: SyntheticConfig) -> list[str]:
    """Validate the numbers and labels of a synthetic config; returns the label list."""
    _check_numbers(cfg)
    return _check_labels(cfg.labels)


def _check_numbers(cfg: SyntheticConfig) -> None:
    problems = []
    if int(cfg.speakers) < 1:
        problems.append(f"speakers must be >= 1, got {cfg.speakers}")
    if int(cfg.per_label) < 1:
        problems.append(f"per_label must be >= 1, got {cfg.per_label}")
    if not float(cfg.duration) > 0:
        problems.append(f"duration must be > 0 seconds, got {cfg.duration}")
    if int(cfg.sample_rate) < 8000:
        problems.append(f"sample_rate must be >= 8000 Hz, got {cfg.sample_rate}")
    if float(getattr(cfg, "variability", 1.0)) < 0:
        problems.append(f"variability must be >= 0, got {cfg.variability}")
    if problems:
        raise ConfigError("invalid synthetic config: " + "; ".join(f"data.synthetic.{p}" for p in problems))


def _check_labels(labels: Any) -> list[str]:
    labels = [str(x) for x in labels]
    unknown = [x for x in labels if x not in PROFILES]
    if unknown:
        raise ConfigError(
            f"invalid config key 'data.synthetic.labels': unknown label(s) {unknown}; "
            f"known: {list(CANONICAL_LABELS)}"
        )
    if not labels:
        raise ConfigError("invalid config key 'data.synthetic.labels': the list is empty")
    return labels


# --------------------------------------------------------------------------------------------------
# Utterance parameters: the emotion profile, pulled toward neutral by a random expressiveness
# --------------------------------------------------------------------------------------------------


def _speaker_style(seed: int, speaker_idx: int, label: str, v: float) -> dict[str, float]:
    """How one talker renders one emotion: fixed offsets shared by all their utterances of that label.

    These are what a speaker-dependent split can memorise and a speaker-independent one cannot.
    """
    key = [_TAG_STYLE, _entropy(seed), speaker_idx, zlib.crc32(label.encode())]
    rng = np.random.default_rng(np.random.SeedSequence(key))
    if label == "neutral":
        return {"f0": 1.0, "rate": 1.0, "level_db": 0.0, "tilt_db": 0.0, "accent_st": 1.0, "breath": 1.0}
    return {
        "f0": float(np.exp(rng.normal(0.0, 0.06 * v))),
        "rate": float(np.exp(rng.normal(0.0, 0.07 * v))),
        "level_db": float(rng.normal(0.0, 1.5 * v)),
        "tilt_db": float(rng.normal(0.0, 1.0 * v)),
        "accent_st": float(np.exp(rng.normal(0.0, 0.2 * v))),
        "breath": float(np.exp(rng.normal(0.0, 0.25 * v))),
    }


def _utterance_profile(
    label: str, spk: Speaker, style: dict[str, float], rng: np.random.Generator, v: float
) -> dict[str, float]:
    """Blend neutral -> label by a random strength, apply speaker and style, then jitter every parameter."""
    base, target = PROFILES["neutral"], PROFILES[label]
    strength = float(np.clip(rng.normal(spk.expressiveness, 0.22 * v), 0.35, 1.6))
    log_fields = {"f0_ratio", "accent_st", "rate", "rhythm_k", "pause_scale", "return_phase", "breath"}
    log_fields |= {"jitter", "shimmer", "formant_scale", "f1_scale", "bandwidth", "drift_st", "tremor_st"}
    p: dict[str, float] = {}
    for f in fields(EmotionProfile):
        a, b = getattr(base, f.name), getattr(target, f.name)
        if f.name in log_fields:
            p[f.name] = float(np.exp(np.log(a) + strength * (np.log(b) - np.log(a))))
        else:
            p[f.name] = float(a + strength * (b - a))

    def lognorm(sd: float) -> float:
        return float(np.exp(rng.normal(0.0, sd * v)))

    p["f0"] = spk.f0 * p.pop("f0_ratio") * style["f0"] * lognorm(0.06)
    p["accent_st"] *= spk.range_scale * style["accent_st"] * lognorm(0.25)
    p["rate"] *= spk.tempo * style["rate"] * lognorm(0.08)
    p["level_db"] += spk.level_db + style["level_db"] + rng.normal(0.0, 2.0 * v)
    p["tilt_db"] += spk.tilt_db + style["tilt_db"] + rng.normal(0.0, 1.2 * v)
    p["return_phase"] *= lognorm(0.2)
    oq = p["open_quotient"] + spk.open_quotient + rng.normal(0.0, 0.03 * v)
    p["open_quotient"] = float(np.clip(oq, 0.35, 0.85))
    p["breath"] *= spk.breath * style["breath"] * lognorm(0.3)
    p["jitter"] *= spk.voice_noise * lognorm(0.3)
    p["shimmer"] *= spk.voice_noise * lognorm(0.3)
    p["declination_st"] += rng.normal(0.0, 0.8 * v)
    p["final_st"] += rng.normal(0.0, 1.0 * v)
    p["formant_scale"] *= spk.tract * lognorm(0.02)
    p["pause_prob"] = float(np.clip(p["pause_prob"] * lognorm(0.3), 0.0, 0.6))
    p["creak_prob"] = float(np.clip(p["creak_prob"], 0.0, 0.9))
    return p


# --------------------------------------------------------------------------------------------------
# Signal generation
# --------------------------------------------------------------------------------------------------


def _box_smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along the last axis via cumulative sums (centred, edge-padded)."""
    if width <= 1:
        return x
    pad = width // 2
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, width - 1 - pad)], mode="edge")
    c = np.cumsum(xp, axis=-1)
    c = np.concatenate([np.zeros(c.shape[:-1] + (1,)), c], axis=-1)
    return (c[..., width:] - c[..., :-width]) / width


def _smooth_noise(rng: np.random.Generator, n: int, step: int) -> np.ndarray:
    """Unit-sd low-frequency noise: random knots every `step` samples, linearly interpolated."""
    knots = rng.normal(0.0, 1.0, n // step + 2)
    return np.interp(np.arange(n) / step, np.arange(knots.size), knots)


def _glottal_pulse(frac: np.ndarray, oq: float, ta: float) -> np.ndarray:
    """LF-like glottal flow derivative over one cycle phase in [0, 1).

    Rosenberg opening/closing up to the open quotient, then an exponential return phase: a short return
    phase (abrupt closure, pressed voice) leaves more high-frequency energy, a long one a steeper tilt.
    Each branch is evaluated only where it applies (the transcendental calls dominate the cost).
    """
    tp, te = 0.6 * oq, oq
    ee = 0.5 * np.pi / (te - tp)
    out = np.empty_like(frac)
    opening = frac < tp
    returning = frac >= te
    closing = ~(opening | returning)
    out[opening] = 0.5 * np.pi / tp * np.sin(frac[opening] * (np.pi / tp))
    out[closing] = -ee * np.sin((frac[closing] - tp) * (0.5 * np.pi / (te - tp)))
    tail = np.exp(-(1.0 - te) / ta)
    out[returning] = -ee * (np.exp((te - frac[returning]) / ta) - tail) / (1.0 - tail)
    return out


def _resonators(freqs: np.ndarray, centres: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """Cascade of 2-pole resonators with unit gain at DC, minimum phase.

    `centres`/`bands`: (..., K) Hz -> (..., bins) complex response. Each section is
    g / ((jw + sigma)^2 + w0^2) with g = sigma^2 + w0^2; the product is kept as a real/imaginary
    numerator over a real denominator, avoiding K complex divisions.
    """
    w = 2 * np.pi * freqs
    w2 = w * w
    sigma = np.pi * bands
    g = sigma**2 + (2 * np.pi * centres) ** 2
    shape = centres.shape[:-1] + (freqs.size,)
    num_re, num_im, den = np.ones(shape), np.zeros(shape), np.ones(shape)
    for k in range(centres.shape[-1]):
        re = g[..., k, None] - w2
        im = (2 * sigma[..., k, None]) * w
        num_re, num_im = num_re * re + num_im * im, num_im * re - num_re * im
        den *= (re * re + im * im) / g[..., k, None]
    return (num_re + 1j * num_im) / den


def _stft(x: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    xp = np.pad(x, (n_fft // 2, n_fft // 2 + hop))
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]
    return np.fft.rfft(frames * window, axis=-1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, window: np.ndarray, length: int) -> np.ndarray:
    frames = np.fft.irfft(spec, n=n_fft, axis=-1) * window
    n_frames = frames.shape[0]
    out = np.zeros((n_frames + n_fft // hop) * hop)
    norm = np.zeros_like(out)
    w2 = window**2
    for r in range(n_fft // hop):
        seg = slice(r * hop, (r + 1) * hop)
        out[r * hop : r * hop + n_frames * hop] += frames[:, seg].reshape(-1)
        norm[r * hop : r * hop + n_frames * hop] += np.tile(w2[seg], n_frames)
    out = out / np.maximum(norm, 1e-8)
    return out[n_fft // 2 : n_fft // 2 + length]


@dataclass(frozen=True)
class _Plan:
    """Syllable-level plan of one utterance: timing (s) and per-syllable choices."""

    starts: np.ndarray
    dur: np.ndarray
    total: float
    onset: np.ndarray  # 0 vowel, 1 fricative, 2 plosive, 3 nasal
    cons: np.ndarray  # share of the syllable taken by the unvoiced/nasal onset
    accent: np.ndarray  # F0 accent height, semitones
    stress: np.ndarray  # energy
    creak: np.ndarray  # bool
    vowel: np.ndarray  # rows of VOWELS

    def locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Times -> (syllable index, position in it in [0, 1], inside-a-syllable mask)."""
        n = self.starts.size
        idx = np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, n - 1)
        u = (t - self.starts[idx]) / self.dur[idx]
        inside = (u >= 0.0) & (u < 1.0)
        return idx, np.clip(u, 0.0, 1.0), inside


def _plan(p: dict[str, float], duration: float, rng: np.random.Generator) -> _Plan:
    """Syllable count from the nominal duration at neutral tempo, so slow emotions last longer."""
    neutral = PROFILES["neutral"]
    per_syllable = 1.0 / neutral.rate + neutral.pause_prob * 0.165 * neutral.pause_scale  # mean seconds
    n = max(2, int(round((duration - 0.2) / per_syllable * rng.uniform(0.9, 1.1))))
    rate, k = p["rate"], max(p["rhythm_k"], 1.5)
    dur = np.clip(rng.gamma(k, 1.0 / (rate * k), n), 0.35 / rate, 2.5 / rate)
    pause = np.where(rng.random(n) < p["pause_prob"], rng.uniform(0.08, 0.25, n), 0.0) * p["pause_scale"]
    pause[-1] = 0.0
    lead, trail = rng.uniform(0.05, 0.15, 2)
    starts = lead + np.concatenate([[0.0], np.cumsum(dur + pause)[:-1]])
    onset = rng.choice(4, n, p=[0.35, 0.3, 0.25, 0.1])
    accent = (rng.random(n) < p["accent_prob"]) * p["accent_st"] * rng.uniform(0.5, 1.0, n)
    creak = rng.random(n) < p["creak_prob"]
    creak[-1] |= rng.random() < 2 * p["creak_prob"]  # creak gathers at phrase ends
    return _Plan(
        starts=starts,
        dur=dur,
        total=float(starts[-1] + dur[-1] + trail),
        onset=onset,
        cons=np.where(onset == 0, 0.0, rng.uniform(0.15, 0.32, n)),
        accent=accent,
        stress=0.55 + 0.45 * (accent > 0) + rng.normal(0.0, 0.08, n),
        creak=creak,
        vowel=rng.integers(0, len(VOWELS), n),
    )


def _voicing_envelope(
    plan: _Plan, idx: np.ndarray, u: np.ndarray, inside: np.ndarray, rate: float
) -> np.ndarray:
    """Voiced energy at times `idx`/`u`: fast attack after the onset consonant, slower decay, stress."""
    c = plan.cons[idx]
    uv = np.clip((u - c) / np.maximum(1.0 - c, 1e-3), 0.0, 1.0)
    env = np.clip(uv / 0.15, 0, 1) ** 0.5 * np.clip((1.0 - uv) / 0.35, 0, 1) ** 0.8
    env *= np.where(plan.onset[idx] == 3, 0.35 + 0.65 * np.clip(uv / 0.25, 0, 1), 1.0)  # nasal murmur
    env *= inside & (u >= c)
    return _box_smooth(env * plan.stress[idx], max(1, int(0.006 * rate)))


def _f0_contour(
    plan: _Plan,
    p: dict[str, float],
    t: np.ndarray,
    idx: np.ndarray,
    u: np.ndarray,
    inside: np.ndarray,
    rng: np.random.Generator,
    rate: float,
) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz) at times `t` (sampled at `rate`): declination, accents, final movement, drift, tremor and
    creak (an octave-ish drop); and the creak mask as 0/1."""
    st = p["declination_st"] * (t / plan.total - 0.5)
    st += plan.accent[idx] * np.sin(np.pi * np.clip((u - 0.1) / 0.8, 0, 1)) ** 2 * inside
    last = (idx == plan.starts.size - 1) & inside
    st += p["final_st"] * last * np.clip((u - 0.2) / 0.8, 0, 1) ** 1.5
    st += p["drift_st"] * _smooth_noise(rng, t.size, max(1, int(0.25 * rate)))
    st += p["tremor_st"] * np.sin(2 * np.pi * rng.uniform(5.0, 8.0) * t + rng.uniform(0, 2 * np.pi))
    creaky = (plan.creak[idx] & inside).astype(np.float64)
    return p["f0"] * np.exp2(st / 12.0) * (1.0 - 0.45 * creaky), creaky


def _glottal_source(
    f0: np.ndarray,
    creaky: np.ndarray,
    env: np.ndarray,
    p: dict[str, float],
    rng: np.random.Generator,
    sr: int,
) -> tuple[np.ndarray, float]:
    """Jittered, shimmered LF-like pulse train plus pulse-synchronous aspiration; and the pulse RMS."""
    cycles = int(np.sum(f0) / sr) + 2
    jitter = rng.normal(0.0, p["jitter"], cycles)
    k0 = np.minimum((np.cumsum(f0) / sr).astype(np.int64), cycles - 1)
    f0 = f0 * (1.0 + np.clip(jitter[k0] * np.where(creaky, 3.0, 1.0), -0.4, 0.4))
    phase = np.cumsum(f0) / sr
    k = np.minimum(phase.astype(np.int64), cycles - 1)
    frac = phase - np.floor(phase)
    amp = np.exp(rng.normal(0.0, p["shimmer"], cycles))
    creak_amp = np.exp(rng.normal(0.0, 2.0 * p["shimmer"], cycles)) * np.where(np.arange(cycles) % 2, 0.6, 1)
    oq = p["open_quotient"]
    pulse = _glottal_pulse(frac, oq, p["return_phase"])
    rms = float(np.sqrt(np.mean(pulse**2))) + 1e-9
    voice = pulse * np.where(creaky, creak_amp[k], amp[k]) * env
    open_phase = np.where(frac < oq, 1.0, 0.35)
    aspiration = rng.normal(0.0, 1.2 * rms * p["breath"], f0.size) * open_phase * env
    return voice + aspiration, rms


def _vocal_tract(
    plan: _Plan,
    fidx: np.ndarray,
    p: dict[str, float],
    freqs: np.ndarray,
    frames_per_40ms: int,
    rng: np.random.Generator,
    v: float,
) -> np.ndarray:
    """(frames, bins) response: F1-F3 from each syllable's vowel (smoothed across syllables), F4-F8 of a
    uniform tube, all scaled by the speaker's tract length; a 70 Hz high-pass and the spectral tilt."""
    f123 = VOWELS[plan.vowel] + p["centralize"] * (SCHWA - VOWELS[plan.vowel])
    f123[:, 0] *= p["f1_scale"]
    f123 *= 1.0 + rng.normal(0.0, 0.04 * v, f123.shape)  # token-to-token variation
    # smoothed (coarticulation), rounded to 0.1 Hz so the plateaus inside syllables repeat exactly
    f123 = np.round(_box_smooth(f123[fidx].T, frames_per_40ms).T * p["formant_scale"], 1)
    bw = BANDWIDTHS * p["bandwidth"]
    rows, which = np.unique(f123, axis=0, return_inverse=True)  # plateaus inside syllables repeat
    moving = _resonators(freqs, rows, np.broadcast_to(bw[:3], rows.shape))[which.reshape(-1)]
    highpass = (2j * np.pi * freqs) / (2j * np.pi * freqs + 2 * np.pi * 70.0)
    tilt = (1.0 + (freqs / 500.0) ** 2) ** (p["tilt_db"] / 12.04)
    fixed = _resonators(freqs, UPPER_FORMANTS * p["formant_scale"], bw[3:]) * highpass * tilt
    return moving * fixed[None, :]


def _noise_spectrum(
    plan: _Plan,
    ft: np.ndarray,
    tract: np.ndarray,
    freqs: np.ndarray,
    p: dict[str, float],
    level: float,
    n_fft: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Unvoiced noise drawn directly as STFT frames: fricatives and plosive bursts in syllable onsets
    (a broad high-frequency resonance), and breath intakes through the vocal tract in pauses."""
    idx, u, inside = plan.locate(ft)
    c = plan.cons[idx]
    onset = plan.onset[idx]
    fric = inside & (onset == 1) & (u < c)
    fric_amp = fric * np.clip(u / np.maximum(c, 1e-3) / 0.3, 0, 1) * plan.stress[idx] * 0.12
    burst_t = plan.starts + 0.8 * plan.cons * plan.dur
    hop_s = ft[1] - ft[0] if ft.size > 1 else 1.0
    burst = inside & (onset == 2) & (np.abs(ft - burst_t[idx]) < 0.5 * hop_s)
    fric_amp = fric_amp + burst * plan.stress[idx] * 0.25
    centre = rng.uniform(2500.0, 6000.0, (plan.starts.size, 1)) * p["formant_scale"]
    highpass = (2j * np.pi * freqs) / (2j * np.pi * freqs + 2 * np.pi * 70.0)
    fric_shape = _resonators(freqs, centre, np.full_like(centre, 1800.0)) * highpass * (freqs / 2000.0)
    gap = (~inside).astype(float)
    breath_amp = gap * _box_smooth(gap, 15) ** 2 * p["breath"] * 0.8
    out = np.zeros(tract.shape, dtype=np.complex128)
    rows = np.flatnonzero((fric_amp > 1e-4) | (breath_amp > 1e-4))  # noise is sparse: fill those frames
    if rows.size:
        shape = fric_amp[rows, None] * fric_shape[idx[rows]] + breath_amp[rows, None] * tract[rows]
        gauss = rng.normal(0.0, 1.0, shape.shape) + 1j * rng.normal(0.0, 1.0, shape.shape)
        out[rows] = gauss * shape * (level * np.sqrt(0.375 * n_fft / 2.0))
    return out


def _set_level(wave: np.ndarray, env: np.ndarray, level_db: float) -> np.ndarray:
    """RMS over the voiced part at -26 dBFS + the emotion's level, then a PEAK ceiling."""
    active = env > 0.2 * (env.max() + 1e-12)
    rms = np.sqrt(np.mean(wave[active] ** 2)) if active.any() else np.sqrt(np.mean(wave**2))
    wave = wave * (10.0 ** ((-26.0 + level_db) / 20.0) / (rms + 1e-12))
    peak = float(np.max(np.abs(wave)))
    return wave * (PEAK / peak) if peak > PEAK else wave


def synthesize_one(cfg: SyntheticConfig, speaker_idx: int, label: str, index: int) -> np.ndarray:
    """One utterance, float32 with peak <= PEAK; bit-identical for the same (seed, speaker, label, index)."""
    _check_numbers(cfg)
    _check_labels([label])
    sr = int(cfg.sample_rate)
    v = float(getattr(cfg, "variability", 1.0))
    label_key = zlib.crc32(label.encode())  # by name, so reordering label lists changes nothing
    entropy = [_TAG_UTTERANCE, _entropy(cfg.seed), speaker_idx, label_key, int(index)]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    style = _speaker_style(cfg.seed, speaker_idx, label, v)
    p = _utterance_profile(label, make_speaker(cfg.seed, speaker_idx), style, rng, v)
    plan = _plan(p, float(cfg.duration), rng)

    # smooth contours at a 1 kHz control rate, then interpolated to audio rate (16x less work)
    n = int(np.ceil(plan.total * sr))
    t = np.arange(n) / sr
    tc = np.arange(int(np.ceil(plan.total * CONTROL_RATE)) + 2) / CONTROL_RATE
    idx, u, inside = plan.locate(tc)
    env = np.interp(t, tc, _voicing_envelope(plan, idx, u, inside, CONTROL_RATE))
    f0_c, creak_c = _f0_contour(plan, p, tc, idx, u, inside, rng, CONTROL_RATE)
    f0 = np.clip(np.interp(t, tc, f0_c), 40.0, 0.11 * sr)
    creaky = np.interp(t, tc, creak_c) > 0.5
    excitation, pulse_rms = _glottal_source(f0, creaky, env, p, rng, sr)

    n_fft = int(2 ** np.ceil(np.log2(0.032 * sr)))
    hop = n_fft // 4
    window = np.hanning(n_fft + 1)[:-1]
    spec = _stft(excitation, n_fft, hop, window)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    ft = np.arange(spec.shape[0]) * hop / sr
    fidx = plan.locate(ft)[0]
    tract = _vocal_tract(plan, fidx, p, freqs, max(1, int(round(0.04 * sr / hop))), rng, v)
    spec = spec * tract + _noise_spectrum(plan, ft, tract, freqs, p, pulse_rms, n_fft, rng)
    wave = _istft(spec, n_fft, hop, window, n)
    return _set_level(wave, env, p["level_db"]).astype(np.float32)


def synthesize(cfg: SyntheticConfig) -> list[SynthUtterance]:
    """Every (speaker, label, index) of the config, in that nesting order."""
    labels = check_config(cfg)
    ids = speaker_ids(cfg)
    jobs = [(s, lab, i) for s in range(len(ids)) for lab in labels for i in range(int(cfg.per_label))]
    out = []
    for s, lab, i in tqdm(jobs, desc="synthetic corpus", disable=len(jobs) < 200, leave=False):
        wave = synthesize_one(cfg, s, lab, i)
        out.append(SynthUtterance(ids[s], speaker_gender(s), lab, i, wave))
    return out
