#!/usr/bin/env python3
"""Can pocketsphinx serve as the conversion evaluation's word judge on the embedded corpus? (issue 34)

The judge must hear words on real readings of the corpus (its copy-synthesis error is bounded by that)
before it can judge conversions. This decodes real test-speaker readings with pocketsphinx's CMU en-us
acoustic model and a unigram language model over the corpus's whole vocabulary (every word of every
transcript, equally likely: the words are known, the sentences are not), pronunciations from the
project's lexicon (CMUdict, eSpeak NG for the words it lacks), at a few language weights and word
insertion penalties, and reports the word error rate. Nothing here is tuned on conversions.

Usage::

    python benchmarks/word_judge.py CORPUS_ROOT [--utterances 15] [--out benchmarks/latest_word_judge.md]
"""

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.data.lexicon import Lexicon, normalise_text, pocketsphinx_models  # noqa: E402
from speechbrain_fdnf.evaluation.judges import PhoneErrorCounter  # noqa: E402

#: (language weight, word insertion penalty): pocketsphinx's default first.
SETTINGS = ((6.5, 0.65), (2.0, 0.65), (2.0, 5.0), (1.0, 1.0))


def transcripts(root):
    """``{wav path: words}`` of every utterance of a TIMIT-layout corpus."""
    return {txt.with_suffix(".WAV"): normalise_text(" ".join(txt.read_text().split()[2:]))
            for txt in sorted(Path(root).glob("*/DR*/*/*.TXT"))}


def write_models(vocabulary, folder):
    """A pronunciation dictionary and a uniform unigram ARPA model over ``vocabulary``; their paths."""
    lexicon, folder = Lexicon(), Path(folder)
    with open(folder / "words.dict", "w") as stream:
        for word in vocabulary:
            for index, phones in enumerate(lexicon.pronunciations(word)):
                stream.write(f"{word}{f'({index + 1})' if index else ''} {' '.join(phones)}\n")
    log_p = math.log10(1.0 / (len(vocabulary) + 1))
    lines = ["\\data\\", f"ngram 1={len(vocabulary) + 2}", "", "\\1-grams:", "-99 <s>", f"{log_p:.4f} </s>",
             *[f"{log_p:.4f} {word}" for word in vocabulary], "", "\\end\\"]
    (folder / "words.arpa").write_text("\n".join(lines) + "\n")
    return folder / "words.dict", folder / "words.arpa"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--utterances", type=int, default=15)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    from pocketsphinx import Decoder

    words = transcripts(args.corpus)
    vocabulary = sorted({word for items in words.values() for word in items})
    chosen = random.Random(0).sample([wav for wav in words if "/TEST/" in str(wav)], args.utterances)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        dictionary, lm = write_models(vocabulary, folder)
        for weight, penalty in SETTINGS:
            decoder = Decoder(hmm=str(pocketsphinx_models()[0]), dict=str(dictionary), lm=str(lm), lw=weight,
                              wip=penalty, loglevel="FATAL")
            counter, started = PhoneErrorCounter(), time.time()
            for wav in chosen:
                audio, _ = soundfile.read(str(wav), dtype="int16")
                decoder.start_utt()
                decoder.process_raw(audio.tobytes(), full_utt=True)
                decoder.end_utt()
                counter.add(words[wav], decoder.hyp().hypstr.split() if decoder.hyp() else [])
            rows.append(f"| {weight} | {penalty} | {100 * counter.rate():.1f} % | {time.time() - started:.1f} |")
    text = "\n".join([
        f"# pocketsphinx as a word judge: real readings of {args.utterances} test-speaker utterances",
        "", f"Corpus `{args.corpus}`, vocabulary {len(vocabulary)} words (uniform unigram), CMU en-us model.", "",
        "| language weight | insertion penalty | word error rate | seconds |", "|---|---|---|---|", *rows, ""])
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
