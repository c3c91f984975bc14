"""Text -> StyleTTS2 token ids: espeak-ng IPA (with stress and punctuation) from the espeak-ng piper-tts bundles,
mapped to the model's 178-symbol table.

The table is the one the checkpoints were trained with: the pad ``$``, 16 punctuation marks (space included), the
52 ASCII letters and the IPA letters and marks. As in the original, a symbol that appears twice (the apostrophe)
maps to its last position, and characters outside the table are dropped.
"""

from __future__ import annotations

import re
import threading

PAD = "$"
PUNCTUATION = ';:,.!?¡¿—…"«»“” '
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
IPA = ("ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘"
       "'\u0329'ᵻ")
SYMBOLS = [PAD, *PUNCTUATION, *LETTERS, *IPA]
N_SYMBOLS = len(SYMBOLS)  # 178
IDS = {symbol: index for index, symbol in enumerate(SYMBOLS)}  # later duplicates win, as in training

MAX_TOKENS = 500  # PL-BERT has 512 positions; the pad token is prepended
_ESPEAK = None
_ESPEAK_LOCK = threading.Lock()
_SPACE_BEFORE = re.compile(r"(?<=\S)([,.!?;:…])")


def _espeak():
    global _ESPEAK
    with _ESPEAK_LOCK:
        if _ESPEAK is None:
            from piper.phonemize_espeak import EspeakPhonemizer

            _ESPEAK = EspeakPhonemizer()
        return _ESPEAK


def phonemize(text: str, voice: str = "en-us") -> list[str]:
    """One IPA string per sentence, punctuation set off by a space (as word tokenisation did in training)."""
    from demod_voice.errors import InputError

    try:
        espeak = _espeak()
        with _ESPEAK_LOCK:
            sentences = espeak.phonemize(voice, text)
    except ImportError:
        from demod_voice.errors import missing_extra

        raise missing_extra("piper-tts", "piper") from None
    except RuntimeError as exc:
        raise InputError(f"espeak-ng has no voice '{voice}': {exc}", hint="StyleTTS2 LibriTTS speaks English: en-us") \
            from None
    out = []
    for phonemes in sentences:
        line = _SPACE_BEFORE.sub(r" \1", "".join(phonemes).strip())
        if line:
            out.append(line)
    return out


def to_ids(phonemes: str) -> list[int]:
    """Token ids of one sentence, the pad id first (the model's start token)."""
    return [0] + [IDS[c] for c in phonemes if c in IDS]


def pieces(phonemes: str, limit: int = MAX_TOKENS) -> list[str]:
    """Split an over-long sentence at spaces so that each piece fits PL-BERT's positions."""
    if len(phonemes) <= limit:
        return [phonemes]
    out, current = [], ""
    for word in phonemes.split(" "):
        while len(word) > limit:  # no space to split at: cut
            if current:
                out.append(current)
                current = ""
            out.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > limit:
            out.append(current)
            candidate = word
        current = candidate
    if current:
        out.append(current)
    return out
