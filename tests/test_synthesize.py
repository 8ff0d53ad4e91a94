"""The embedded corpus generator: TIMIT layout, determinism, reuse."""

import subprocess
import sys

import pytest
import soundfile
from conftest import first_utterance

from speechbrain_fdnf.data.synthesize import CorpusOptions, plan_corpus, synthesize_corpus


def test_corpus_has_timit_layout(corpus):
    speakers = sorted(p.name for p in corpus.glob("TRAIN/DR*/*"))
    assert len(speakers) == 4 and all(s[0] in "FM" and len(s) == 5 for s in speakers)
    assert len(list(corpus.glob("TEST/DR*/*"))) == 2
    wav = first_utterance(corpus)
    info = soundfile.info(str(wav))
    assert info.samplerate == 16000 and info.channels == 1
    assert wav.with_suffix(".PHN").exists() and wav.with_suffix(".TXT").exists()
    lines = [line.split() for line in wav.with_suffix(".PHN").read_text().splitlines()]
    assert int(lines[0][0]) == 0 and int(lines[-1][1]) == info.frames  # covers the audio
    assert all(int(a[1]) == int(b[0]) for a, b in zip(lines, lines[1:]))  # contiguous
    assert lines[-1][2] == "h#"  # eSpeak ends in a pause; it may start speaking at sample 0
    assert all(line[2] != "h#" for line in lines[1:-1])  # inside an utterance pauses are "pau"


def test_synthesis_is_deterministic(corpus, tmp_path):
    plan = plan_corpus(CorpusOptions.small(seed=7))
    assert plan == plan_corpus(CorpusOptions.small(seed=7))
    assert plan != plan_corpus(CorpusOptions.small(seed=8))
    again = tmp_path / "again"
    synthesize_corpus(again, CorpusOptions.small(), workers=1)  # the fixture used one per core
    files = sorted(p.relative_to(corpus) for p in corpus.rglob("*") if p.suffix in (".WAV", ".PHN"))
    assert files and files == sorted(p.relative_to(again) for p in again.rglob("*") if p.suffix in (".WAV", ".PHN"))
    assert all((corpus / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_corpus_is_reused_and_other_options_refused(corpus):
    manifest = synthesize_corpus(corpus, CorpusOptions.small())
    assert manifest["utterances"] == 6 * 8
    with pytest.raises(FileExistsError, match="other options"):
        synthesize_corpus(corpus, CorpusOptions.small(seed=99))


SYNTHESIZE_ONE = """
import sys
from pathlib import Path
from speechbrain_fdnf.data.espeak import ESpeak
from speechbrain_fdnf.data.synthesize import synthesize_utterance
ESpeak.instance().seed(1234)
synthesize_utterance({"utt": "SX1", "text": "The breathy voice reads a longer sentence about the weather today.",
                      "voice": "en-us+f3", "pitch": 60, "rate": 165, "pitch_range": 50}, Path(sys.argv[1]))
"""


def test_breath_voices_are_reproducible_for_a_seed(tmp_path):
    # eSpeak NG draws breath noise (en-us+f3 has some) from its own generator, not libc's rand():
    # both must be seeded, or every run differs. A fresh process per take, as synthesize_corpus does.
    takes = []
    for take in ("a", "b"):
        (tmp_path / take).mkdir()
        subprocess.run([sys.executable, "-c", SYNTHESIZE_ONE, str(tmp_path / take)], check=True, timeout=120)
        takes.append((tmp_path / take / "SX1.WAV").read_bytes())
    assert takes[0] == takes[1]
