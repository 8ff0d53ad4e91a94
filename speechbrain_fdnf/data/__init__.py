"""Data preparation: TIMIT-layout corpora, audio checks, phone tables, frame-level features and labels (the embedded corpus synthesizer is :mod:`speechbrain_fdnf.corpus`)."""
