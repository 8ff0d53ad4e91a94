"""Words to phones for forced alignment: CMUdict, with eSpeak NG for the words it lacks.

CMUdict (134k words, with alternative pronunciations) ships inside pocketsphinx's wheel, next to the
acoustic model it was made for. A word CMUdict lacks (a name, a British spelling, a coinage) is
pronounced by eSpeak NG, the project's synthesizer, which converts any text to phonemes offline; its
phonemes are mapped through TIMIT-61 to ARPAbet (:func:`~speechbrain_fdnf.data.phones.espeak_to_timit`,
:func:`~speechbrain_fdnf.data.phones.folded_to_arpabet`). Nothing is downloaded: g2p-en would fetch
NLTK data at import.

Authors
 * speechbrain-fdnf developers
"""

import hashlib
import re
import unicodedata
from pathlib import Path

from speechbrain_fdnf.data.phones import FOLD_61_TO_39, espeak_to_timit, folded_to_arpabet

#: Letters, digits and in-word apostrophes make words; everything else separates them.
_NON_WORD = re.compile(r"[^a-z0-9']+")


def normalise_text(text):
    """The words of a transcript as the dictionary spells them: lower case, accents and punctuation
    removed, apostrophes kept inside words (``don't``) and dropped at their edges.

    Example
    -------
    >>> normalise_text("  \\"Café-owners\\" don't  DANCE, 'til 9! ")
    ['cafe', 'owners', "don't", 'dance', 'til', '9']
    """
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [word.strip("'") for word in _NON_WORD.split(plain) if word.strip("'")]


def pocketsphinx_models():
    """``(acoustic model folder, CMUdict path)`` inside pocketsphinx's wheel."""
    try:
        from pocketsphinx import get_model_path
    except ImportError as err:
        raise ImportError(f"forced alignment needs pocketsphinx ({err}); pip install 'speechbrain-fdnf[align]'") from err
    models = Path(get_model_path()) / "en-us"
    return models / "en-us", models / "cmudict-en-us.dict"


def read_dictionary(path):
    """``{word: [pronunciation, ...]}`` of a CMUdict-format file (``word(2)`` lines are alternatives)."""
    entries = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 2:
            entries.setdefault(fields[0].split("(")[0], []).append(fields[1:])
    return entries


#: How a :class:`Lexicon` uses eSpeak NG: never, for words the dictionary lacks, or also as one more
#: alternative pronunciation of every word (the aligner then chooses by the audio).
ESPEAK_USES = ("none", "missing", "variant")


class Lexicon:
    """Pronunciations of words: the dictionary's, and eSpeak NG's as ``espeak`` says (:data:`ESPEAK_USES`).

    Arguments
    ---------
    dictionary : str or Path, optional
        A CMUdict-format file (default: the CMUdict inside pocketsphinx).
    espeak : str
        ``missing`` (default): eSpeak NG pronounces the words the dictionary lacks; ``variant``: also
        every other word, as one more alternative; ``none``: never.
    """

    def __init__(self, dictionary=None, espeak="missing"):
        if espeak not in ESPEAK_USES:
            raise ValueError(f"espeak must be one of {ESPEAK_USES}, got {espeak!r}")
        self.path = Path(dictionary) if dictionary else pocketsphinx_models()[1]
        self.entries = read_dictionary(self.path)
        self.espeak = espeak
        self.guessed = {}

    def identity(self):
        """A short digest of what decides the pronunciations: the dictionary's content and the eSpeak use."""
        digest = hashlib.sha1(self.path.read_bytes())
        digest.update(self.espeak.encode())
        return digest.hexdigest()[:12]

    def pronunciations(self, word):
        """The ARPAbet pronunciations of ``word`` (the dictionary's first), or ``[]`` when no source has one."""
        known = self.entries.get(word, [])
        if self.espeak == "none" or (known and self.espeak == "missing"):
            return known
        if word not in self.guessed:
            guess = espeak_pronunciation(word)
            self.guessed[word] = [guess] if guess and guess not in known else []
        return known + self.guessed[word]

    def missing(self, words):
        """The words of ``words`` with no pronunciation at all."""
        return [word for word in words if not self.pronunciations(word)]


def espeak_pronunciation(word):
    """eSpeak NG's pronunciation of one word in ARPAbet (``[]`` if it has no phonemes).

    Example
    -------
    >>> espeak_pronunciation("thimbles")
    ['TH', 'IH', 'M', 'B', 'L', 'Z']
    """
    from speechbrain_fdnf.corpus.espeak import ESpeak

    phones = []
    for _, mnemonic in ESpeak.instance().synthesize(word).phonemes:
        try:
            folded = FOLD_61_TO_39[espeak_to_timit(mnemonic)]
        except KeyError:
            continue  # a mnemonic without a TIMIT phone carries no pronunciation
        if folded_to_arpabet(folded):
            phones.append(folded_to_arpabet(folded))
    return phones
