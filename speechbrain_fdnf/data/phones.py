"""TIMIT phone sets, the standard 61 -> 39 folding, and eSpeak NG -> TIMIT-61.

Authors
 * speechbrain-fdnf developers
"""

TIMIT61 = (
    "aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl "
    "h# hh hv ih ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v w "
    "y z zh"
).split()

#: Lee & Hon (1989) folding of the 61 TIMIT phones to 39 classes. Closures,
#: pauses and h# become "sil". They delete the glottal stop "q"; at frame level
#: every frame needs a label, so its (closure-like) frames are given "sil" too,
#: which the optional silence exclusion then removes, as deletion would.
FOLD_61_TO_39 = {phone: phone for phone in TIMIT61}
FOLD_61_TO_39.update(
    {
        "ao": "aa",
        "ax": "ah",
        "ax-h": "ah",
        "axr": "er",
        "hv": "hh",
        "ix": "ih",
        "el": "l",
        "em": "m",
        "en": "n",
        "nx": "n",
        "eng": "ng",
        "zh": "sh",
        "ux": "uw",
        "q": "sil",
    }
)
for _closure in ("pcl", "tcl", "kcl", "bcl", "dcl", "gcl", "h#", "pau", "epi"):
    FOLD_61_TO_39[_closure] = "sil"

TIMIT39 = tuple(sorted(set(FOLD_61_TO_39.values())))
SILENCE = "sil"

#: eSpeak NG (en-us) phoneme mnemonics, stress marks stripped, to TIMIT-61.
#: One eSpeak segment keeps one label: r-coloured vowels ("A@" in "car") map to
#: their vowel, stops to their release symbol (eSpeak has no separate closure).
ESPEAK_TO_TIMIT = {
    # vowels
    "0": "aa", "A:": "aa", "A@": "aa", "aa": "ae", "a": "ae", "a#": "ax",
    "E": "eh", "e@": "eh", "eI": "ey", "I": "ih", "I2": "ih", "I#": "ix",
    "i": "iy", "i:": "iy", "i@": "ih", "i@3": "ih", "O:": "ao", "O2": "ao",
    "O@": "ao", "o@": "ao", "OI": "oy", "oU": "ow", "U": "uh", "U@": "uh",
    "u:": "uw", "V": "ah", "aI": "ay", "aI3": "ay", "aI@": "ay", "aU": "aw",
    "3:": "er", "3": "axr", "@": "ax", "@2": "ax", "@5": "ax", "@L": "el",
    # consonants
    "b": "b", "d": "d", "g": "g", "p": "p", "t": "t", "k": "k", "t2": "t",
    "t#": "dx", "?": "q", "tS": "ch", "dZ": "jh", "f": "f", "v": "v",
    "T": "th", "D": "dh", "s": "s", "z": "z", "S": "sh", "Z": "zh", "h": "hh",
    "m": "m", "n": "n", "N": "ng", "n-": "en", "m-": "em", "l": "l", "r": "r",
    "r-": "r", "w": "w", "j": "y", ";": "y",
    # other English accents' own phonemes, which the corpus's en-us voices never say (benchmarks/unseen_voices.py
    # reads stock voices in them): Scottish r-coloured vowels of "bird" and "word", its "wh" and a diphthong
    # variant; Caribbean English's dental t
    "IR": "er", "VR": "er", "w#": "w", "aI2": "ay", "t[": "t",
}
#: eSpeak pause mnemonics: h# at the edges of an utterance, pau inside it.
ESPEAK_PAUSES = {"_", "_:", "_!", "_;", "_^_", "||", "|"}
ESPEAK_STRESS_MARKS = "',=%"


def espeak_to_timit(mnemonic, interior=True):
    """Maps one eSpeak phoneme mnemonic to a TIMIT-61 symbol.

    Arguments
    ---------
    mnemonic : str
        The phoneme name from an eSpeak phoneme event.
    interior : bool
        Whether the phoneme is inside the utterance (pauses become ``pau``)
        or at an edge (pauses become ``h#``).

    Returns
    -------
    str

    Raises
    ------
    KeyError
        For a mnemonic with no mapping (never silently "unknown").

    Example
    -------
    >>> espeak_to_timit("'aI"), espeak_to_timit("_:"), espeak_to_timit("_", interior=False)
    ('ay', 'pau', 'h#')
    """
    name = mnemonic.strip(ESPEAK_STRESS_MARKS)
    if name in ESPEAK_PAUSES:
        return "pau" if interior else "h#"
    if name not in ESPEAK_TO_TIMIT:
        raise KeyError(f"eSpeak phoneme {mnemonic!r} has no TIMIT-61 mapping")
    return ESPEAK_TO_TIMIT[name]


#: The 39 ARPAbet phones of CMUdict (pocketsphinx's en-us model, the Montreal Forced Aligner's
#: ``english_us_arpa`` model), stress digits stripped.
ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W "
    "Y Z ZH"
).split()
#: ARPAbet phones the 39 folded TIMIT classes merge into another; the rest are the lower-case name.
ARPABET_TO_FOLDED = {"AO": "aa", "ZH": "sh"}
#: Labels aligners write for silence, noise and unknown speech (pocketsphinx fillers, MFA's
#: ``sil``/``sp``/``spn`` and empty intervals): all become the silence class.
SILENCE_LABELS = {"", "SIL", "SP", "SPN", "NSN", "+NSN+", "+SPN+", "+BREATH+", "<SIL>", "<EPS>", "(NULL)"}


def fold_phone(label):
    """Folds one aligner label to the 39 TIMIT classes: a TIMIT-61 symbol, an ARPAbet phone (with or
    without its stress digit) or a silence/noise label (:data:`SILENCE_LABELS`).

    Raises
    ------
    KeyError
        For a label that is none of these (the caller names the file).

    Example
    -------
    >>> [fold_phone(label) for label in ("AH0", "ao", "ZH", "pcl", "spn", "", "ER1")]
    ['ah', 'aa', 'sh', 'sil', 'sil', 'sil', 'er']
    """
    name = label.strip()
    if name.upper() in SILENCE_LABELS:
        return SILENCE
    if name.lower() in FOLD_61_TO_39:
        return FOLD_61_TO_39[name.lower()]
    bare = name.upper().rstrip("012")
    if bare in ARPABET:
        return ARPABET_TO_FOLDED.get(bare, bare.lower())
    raise KeyError(f"phone label {label!r} is neither TIMIT-61, ARPAbet nor a silence label")


def folded_to_arpabet(phone):
    """The ARPAbet phone of a folded TIMIT class (``None`` for silence): what a pronunciation
    dictionary holds. The flap ``dx``, which ARPAbet writes as the stop it comes from, becomes ``T``.

    Example
    -------
    >>> [folded_to_arpabet(p) for p in ("aa", "dx", "sil", "sh")]
    ['AA', 'T', None, 'SH']
    """
    if phone == SILENCE:
        return None
    return "T" if phone == "dx" else phone.upper()


def merge_segments(segments):
    """``(start, end, label)`` segments with neighbours of the same label joined.

    Example
    -------
    >>> merge_segments([(0, 5, "sil"), (5, 9, "sil"), (9, 12, "aa")])
    [(0, 9, 'sil'), (9, 12, 'aa')]
    """
    out = []
    for start, end, label in segments:
        if out and out[-1][2] == label:
            out[-1] = (out[-1][0], end, label)
        else:
            out.append((start, end, label))
    return out
