"""The embedded corpus: a small TIMIT-layout corpus synthesized with eSpeak NG.

A product of its own, apart from the data preparation every user needs
(:mod:`speechbrain_fdnf.data`): the eSpeak NG binding (``espeak``), the voices
(``speakers``), the sentences (``sentences`` with the packaged ``grammar.json``)
and the corpus writer (``synthesize``; ``python -m speechbrain_fdnf.corpus.synthesize OUT``).
The data preparation reads its output exactly as it reads real TIMIT.
"""
