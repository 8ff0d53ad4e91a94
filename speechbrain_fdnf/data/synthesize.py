"""The embedded corpus's synthesizer under its pre-0.5 path: ``python -m speechbrain_fdnf.data.synthesize OUT``.

It now lives in :mod:`speechbrain_fdnf.corpus.synthesize`; this module keeps the old command and
imports working.
"""

from speechbrain_fdnf.corpus.synthesize import CorpusOptions, main, plan_corpus, synthesize_corpus

__all__ = ["CorpusOptions", "main", "plan_corpus", "synthesize_corpus"]

if __name__ == "__main__":
    main()
