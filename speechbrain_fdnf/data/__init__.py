"""Data: the embedded eSpeak NG corpus, TIMIT preparation, audio checks and frame-level features."""
