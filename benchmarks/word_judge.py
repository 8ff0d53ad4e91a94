#!/usr/bin/env python3
"""Can pocketsphinx serve as the conversion evaluation's word judge on the embedded corpus? (issue 34)

The judge must hear words on real readings of the corpus (its copy-synthesis error is bounded by that)
before it can judge conversions. This decodes real test-speaker readings with pocketsphinx's CMU en-us
acoustic model and a language model over the corpus's language: ``unigram``, its whole vocabulary (every
word of every transcript, equally likely: the words are known, the sentences are not), or ``grammar``, the
embedded corpus's own sentence grammar as a JSGF grammar (its templates over word classes and its
handwritten sentences: every sentence the synthesizer can read, train and test alike, not the test
sentences alone); pronunciations from the project's lexicon (CMUdict, eSpeak NG for the words it lacks), at
a few language weights and word insertion penalties, and reports the word error rate. Nothing here is
tuned on conversions.

Usage::

    python benchmarks/word_judge.py CORPUS_ROOT [--utterances 15] [--language unigram|grammar]
        [--out benchmarks/latest_word_judge.md]
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


def write_dictionary(vocabulary, path):
    """A pronunciation dictionary of ``vocabulary`` (every pronunciation the lexicon has) at ``path``."""
    lexicon = Lexicon()
    with open(path, "w") as stream:
        for word in sorted(vocabulary):
            for index, phones in enumerate(lexicon.pronunciations(word)):
                stream.write(f"{word}{f'({index + 1})' if index else ''} {' '.join(phones)}\n")
    return path


def write_grammar(folder):
    """The embedded corpus's sentence grammar (``speechbrain_fdnf.corpus.sentences``) as a JSGF grammar and its
    dictionary: one rule per word class and form, one alternative per template and per handwritten sentence.
    Their paths ``(dictionary, grammar)``.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> dictionary, grammar = write_grammar(folder)
    >>> text = grammar.read_text()
    >>> "<noun_plural> =" in text and "( the quick brown fox jumps over the lazy dog )" in text
    True
    """
    from speechbrain_fdnf.corpus.sentences import _FORMS, _SLOT, HANDWRITTEN, load_grammar

    grammar, folder, vocabulary = load_grammar(), Path(folder), set()

    def spoken(text):
        words = normalise_text(text)
        vocabulary.update(words)
        return " ".join(words)

    rules = {}
    for name, values in grammar.items():
        if name in ("about", "templates"):
            continue
        forms = enumerate(_FORMS[name]) if name in _FORMS else [(None, None)]
        for index, form in forms:
            words = sorted({spoken(value if index is None else value[index]) for value in values})
            rules[name if form is None else f"{name}_{form}"] = " | ".join(words)

    def slot(match):
        name, form = match.group(1), match.group(2)
        return f" <{name}_{form or _FORMS[name][0]}> " if name in _FORMS else f" <{name}> "

    for index, template in enumerate(grammar["templates"]):
        tokens = _SLOT.sub(slot, template).split()
        rules[f"template{index}"] = " ".join(token if token.startswith("<") else spoken(token) for token in tokens)
    sentences = [f"<template{index}>" for index in range(len(grammar["templates"]))]
    sentences += [f"( {spoken(text)} )" for text in HANDWRITTEN]
    lines = ["#JSGF V1.0;", "grammar corpus;", f"public <sentence> = {' | '.join(sentences)};",
             *[f"<{name}> = {body};" for name, body in rules.items()]]
    (folder / "corpus.jsgf").write_text("\n".join(lines) + "\n")
    return write_dictionary(vocabulary, folder / "words.dict"), folder / "corpus.jsgf"


def write_models(vocabulary, folder):
    """A pronunciation dictionary and a uniform unigram ARPA model over ``vocabulary``; their paths."""
    folder = Path(folder)
    write_dictionary(vocabulary, folder / "words.dict")
    log_p = math.log10(1.0 / (len(vocabulary) + 1))
    lines = ["\\data\\", f"ngram 1={len(vocabulary) + 2}", "", "\\1-grams:", "-99 <s>", f"{log_p:.4f} </s>",
             *[f"{log_p:.4f} {word}" for word in vocabulary], "", "\\end\\"]
    (folder / "words.arpa").write_text("\n".join(lines) + "\n")
    return folder / "words.dict", folder / "words.arpa"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--utterances", type=int, default=15)
    parser.add_argument("--language", choices=("unigram", "grammar"), default="unigram")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    from pocketsphinx import Decoder

    words = transcripts(args.corpus)
    vocabulary = sorted({word for items in words.values() for word in items})
    chosen = random.Random(0).sample([wav for wav in words if "/TEST/" in str(wav)], args.utterances)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if args.language == "grammar":
            dictionary, language = write_grammar(folder)
        else:
            dictionary, language = write_models(vocabulary, folder)
        for weight, penalty in SETTINGS:
            decoder = Decoder(hmm=str(pocketsphinx_models()[0]), dict=str(dictionary), lw=weight, wip=penalty,
                              loglevel="FATAL", **{"jsgf" if args.language == "grammar" else "lm": str(language)})
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
        "", f"Corpus `{args.corpus}`, " + ("the corpus's sentence grammar (JSGF)" if args.language == "grammar" else
                                            f"vocabulary {len(vocabulary)} words (uniform unigram)") + ", CMU en-us model.", "",
        "| language weight | insertion penalty | word error rate | seconds |", "|---|---|---|---|", *rows, ""])
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
