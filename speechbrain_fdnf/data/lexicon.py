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


class Lexicon:
    """Pronunciations of words: CMUdict's, else eSpeak NG's (``espeak=False``: none).

    Arguments
    ---------
    dictionary : str or Path, optional
        A CMUdict-format file (default: the CMUdict inside pocketsphinx).
    espeak : bool
        Pronounce words missing from the dictionary with eSpeak NG.
    """

    def __init__(self, dictionary=None, espeak=True):
        self.path = Path(dictionary) if dictionary else pocketsphinx_models()[1]
        self.entries = read_dictionary(self.path)
        self.espeak = espeak
        self.guessed = {}

    def pronunciations(self, word):
        """The ARPAbet pronunciations of ``word``, or ``[]`` when neither source has one."""
        if word in self.entries:
            return self.entries[word]
        if word not in self.guessed:
            self.guessed[word] = [espeak_pronunciation(word)] if self.espeak else []
            self.guessed[word] = [p for p in self.guessed[word] if p]
        return self.guessed[word]

    def missing(self, words):
        """The words of ``words`` with no pronunciation at all."""
        return [word for word in words if not self.pronunciations(word)]

    def write_additions(self, path):
        """Writes the eSpeak pronunciations used so far (CMUdict format) to ``path``; returns their number."""
        lines = [f"{word} {' '.join(pron[0])}" for word, pron in sorted(self.guessed.items()) if pron]
        Path(path).write_text("".join(line + "\n" for line in lines))
        return len(lines)


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
