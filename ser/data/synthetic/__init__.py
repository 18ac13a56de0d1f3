"""The built-in synthetic corpus: a voice synthesiser (`voice`), real-corpus file naming (`naming`) and
its cached materialisation (`materialize`). Nothing is ever downloaded."""

from ser.data.synthetic.materialize import config_hash, materialize
from ser.data.synthetic.naming import STYLES, NamingWarning, write_corpus
from ser.data.synthetic.voice import (
    PEAK,
    PROFILES,
    SPEAKER_REGEX,
    SynthUtterance,
    check_config,
    speaker_gender,
    speaker_ids,
    synthesize,
    synthesize_one,
)

__all__ = [
    "PEAK",
    "PROFILES",
    "SPEAKER_REGEX",
    "STYLES",
    "NamingWarning",
    "SynthUtterance",
    "check_config",
    "config_hash",
    "materialize",
    "speaker_gender",
    "speaker_ids",
    "synthesize",
    "synthesize_one",
    "write_corpus",
]
