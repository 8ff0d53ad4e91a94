#!/usr/bin/env python3
"""The converter on voices, accents and sentences that no part of the project was built on: eSpeak NG's own stock
voices (not the embedded corpus's calibrated ones) in English accents, reading Harvard sentences (IEEE 1969, never in
the corpus's grammar), judged as the evaluation judges (Resemblyzer at the real readings' equal-error threshold, the
CTC phone recognizer, Praat's median F0, DNSMOS). Two sets of voices: ``choice``, on which a setting may be chosen by a
rule written before its run (docs/RESULTS.md 6ze), and ``report``, never chosen on.

Each set's 12 stock speakers (6 men, 6 women; choice: US, British, RP, Lancastrian and West Midlands English;
report: other variants, with New York, Scottish and Caribbean English besides) reads three
sentences of its own as the converter's references, three more as the judge's enrolment, and the same four
sentences as every other speaker (the sources, each with a parallel reading by every target). Phones are eSpeak's
events folded to TIMIT's 39 (the British accents' vowels through the same American mapping: a few are mislabelled
by it, which the PER of the real readings shows). The tagger's frame accuracy on these voices is reported too.

Usage::

    python benchmarks/unseen_voices.py [--model results_s2/fdnf/1234/inference] \\
        [--recognizer results_s2/phone_recognition] [--trials 48] [--out benchmarks/latest_unseen_voices.md]
"""

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from speechbrain_fdnf.corpus.espeak import ESpeak  # noqa: E402
from speechbrain_fdnf.corpus.synthesize import synthesize_utterance  # noqa: E402
from speechbrain_fdnf.data.timit import read_utterance  # noqa: E402
from speechbrain_fdnf.evaluation import conversion  # noqa: E402
from speechbrain_fdnf.inference import SpeechFactorizer  # noqa: E402
from speechbrain_fdnf.manipulations import build  # noqa: E402
from speechbrain_fdnf.tagging import UNLABELLED, frame_accuracy, silence_index, utterance_frames  # noqa: E402
from units_word_loss import block_judges, judged_table  # noqa: E402

#: (speaker, gender, eSpeak voice): stock variants of eSpeak NG's data, each accent with a man and a woman. The
#: ``choice`` voices: settings may be chosen on them (docs/RESULTS.md 6ze); the ``report`` voices (other variants, and
#: New York, Scottish and Caribbean English besides) are only reported on.
CHOICE_SPEAKERS = [("US1", "M", "en-us+m1"), ("US2", "F", "en-us+f2"), ("US3", "M", "en-us+Andy"),
                   ("US4", "F", "en-us+Annie"), ("GB1", "M", "en+m3"), ("GB2", "F", "en+f4"), ("RP1", "M", "en-gb-x-rp+david"),
                   ("RP2", "F", "en-gb-x-rp+belinda"), ("LA1", "M", "en-gb-x-gbclan+m5"), ("LA2", "F", "en-gb-x-gbclan+linda"),
                   ("WM1", "M", "en-gb-x-gbcwmd+m7"), ("WM2", "F", "en-gb-x-gbcwmd+f5")]
REPORT_SPEAKERS = [("NY1", "M", "en-us-nyc+m2"), ("NY2", "F", "en-us-nyc+f1"), ("SC1", "M", "en-gb-scotland+m4"),
                   ("SC2", "F", "en-gb-scotland+f3"), ("CB1", "M", "en-029+m6"), ("CB2", "F", "en-029+steph"),
                   ("US5", "M", "en-us+Lee"), ("US6", "F", "en-us+Alicia"), ("GB3", "M", "en+travis"),
                   ("GB4", "F", "en+anika"), ("RP3", "M", "en-gb-x-rp+m8"), ("WM3", "F", "en-gb-x-gbcwmd+aunty")]
#: Harvard sentences, lists 1-4 (the choice voices read them) and 5-8 (the report voices): in each, the last four
#: are every speaker's sources; each speaker's own six (references, then enrolment) are drawn in turn from the
#: first 36, so each of those is read by two speakers.
HARVARD_1_4 = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living.",
]
HARVARD_5_8 = [
    "A king ruled the state in the early days.", "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.", "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.", "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.", "Hop over the fence and plunge in.",
    "The friendly gang left the drug store.", "Mesh wire keeps chicks inside.",
    "The frosty air passed through the coat.", "The crooked maze failed to fool the mouse.",
    "Adding fast leads to wrong sums.", "The show was a flop from the very start.",
    "A saw is a tool used for making boards.", "The wagon moved on well oiled wheels.",
    "March the soldiers past the next hill.", "A cup of sugar makes sweet fudge.",
    "Place a rosebush near the porch steps.", "Both lost their lives in the raging storm.",
    "We talked of the side show in the circus.", "Use a pencil to write the first draft.",
    "He ran half way to the hardware store.", "The clock struck to mark the third period.",
    "A small creek cut across the field.", "Cars and busses stalled in snow drifts.",
    "The set of china hit the floor with a crash.", "This is a grand season for hikes on the road.",
    "The dune rose from the edge of the water.", "Those words were the cue for the actor to leave.",
    "A yacht slid around the point into the bay.", "The two met while playing on the sand.",
    "The ink stain dried on the finished page.", "The walled town was seized without a fight.",
    "The lease ran out in sixteen weeks.", "A tame squirrel makes a nice pet.",
    "The horn of the car woke the sleeping cop.", "The heart beat strongly and with firm strokes.",
    "The pearl was worn in a thin silver ring.", "The fruit peel was cut in thick slices.",
]
#: name -> (speakers, sentences)
VOICE_SETS = {"choice": (CHOICE_SPEAKERS, HARVARD_1_4), "report": (REPORT_SPEAKERS, HARVARD_5_8)}


def synthesize_material(folder, voices="choice"):
    """``{speaker: Material}``: every speaker of the set ``voices`` (:data:`VOICE_SETS`) with its readings
    synthesized into ``folder`` (WAV, PHN, TXT) and read back as prepared entries (TIMIT's closures labelled as in
    the corpus)."""
    speakers, sentences = VOICE_SETS[voices]
    own, sources = sentences[:36], sentences[36:]
    material = {}
    with ESpeak.isolated() as espeak:
        espeak.seed(1)
        for number, (speaker, gender, voice) in enumerate(speakers):
            entries = []
            for index, text in enumerate([own[(6 * number + k) % len(own)] for k in range(6)] + sources):
                where = folder / speaker
                where.mkdir(parents=True, exist_ok=True)
                plan = dict(utt=f"H{index}", text=text, voice=voice, pitch=50, rate=175, pitch_range=50)
                synthesize_utterance(espeak, plan, where, closures=True)
                entries.append(dict(read_utterance(where / f"H{index}.WAV"), speaker=speaker, gender=gender))
            material[speaker] = conversion.Material(entries[:3], entries[3:6], entries[6:])
    return material


def source_frames(factorizer, material):
    """``{speaker: {utterance: (features, phones)}}``: every speaker's sources as the tagger recipe reads them."""
    return {speaker: utterance_frames(factorizer, {entry["wav"]: entry for entry in item.readings})
            for speaker, item in material.items()}


def memoised_tags(tagger):
    """``tag(features) -> (frames,)`` of ``tagger``, each utterance's frames tagged once however often asked."""
    tags = {}  # id of an utterance's frames -> its tags

    def tag(feats):
        if id(feats) not in tags:
            tags[id(feats)] = tagger.tag(feats).cpu()
        return tags[id(feats)]

    return tag


def tagger_accuracy(tag, frames, silence):
    """``(all, {speaker: share})``: the share of the sources' speech frames (:func:`source_frames`) that ``tag``
    names as labelled (the tagger recipe's :func:`~speechbrain_fdnf.tagging.frame_accuracy`), over every speaker's
    readings and per speaker."""
    by_speaker = {speaker: frame_accuracy(tag, own, silence) for speaker, own in frames.items()}
    every = {uid: item for own in frames.values() for uid, item in own.items()}
    return frame_accuracy(tag, every, silence), by_speaker


def tagger_confusions(tag, frames, names, silence, count=5):
    """``{speaker: [(labelled, tagged, share), ...]}``: each speaker's ``count`` commonest errors of ``tag`` on its
    sources' speech frames (:func:`source_frames`), as phone ``names``, each with its share of the speaker's
    speech frames."""
    confusions = {}
    for speaker, own in frames.items():
        errors, speech = Counter(), 0
        for feats, phones in own.values():
            keep = (phones != UNLABELLED) & (phones != silence)
            wrong = keep & (tag(feats) != phones)
            speech += int(keep.sum())
            errors.update(zip(phones[wrong].tolist(), tag(feats)[wrong].tolist()))
        confusions[speaker] = [(names[label], names[tagged], times / max(speech, 1))
                               for (label, tagged), times in errors.most_common(count)]
    return confusions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="results_s2/fdnf/1234/inference", help="an f-DNF folder with a tagger")
    parser.add_argument("--recognizer", default="results_s2/phone_recognition")
    parser.add_argument("--voices", choices=tuple(VOICE_SETS), default="choice",
                        help="choice: the voices settings may be chosen on; report: others, only reported on")
    parser.add_argument("--tagger_only", action="store_true", help="only the tagger's frame accuracy on the sources")
    parser.add_argument("--confusions", type=int, default=0, metavar="N",
                        help="with --tagger_only: each speaker's N commonest tagger errors (labelled -> tagged)")
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    factorizer = SpeechFactorizer.from_hparams(source=args.model)
    if factorizer.tagger is None:
        raise SystemExit(f"{args.model} holds no phone tagger: python recipes/TIMIT/train_tagger.py hparams/phone_tagger.yaml")
    with tempfile.TemporaryDirectory(prefix="unseen-voices-") as folder:
        material = synthesize_material(Path(folder), args.voices)
        block = conversion.Block("unseen voices", material, conversion.draw_trials(material, args.trials, args.seed))
        seconds = [sum(entry["duration"] for entry in item.references) for item in material.values()]
        frames, tag, silence = source_frames(factorizer, material), memoised_tags(factorizer.tagger), silence_index(factorizer)
        accuracy, by_speaker = tagger_accuracy(tag, frames, silence)
        tagged = (f"The tagger ({args.model}) names {100 * accuracy:.1f} % of the sources' speech frames as labelled ("
                  + ", ".join(f"{speaker} {100 * value:.0f}" for speaker, value in by_speaker.items()) + ").")
        if args.tagger_only:
            print(tagged)
            if args.confusions:
                confusions = tagger_confusions(tag, frames, factorizer.labels("phone"), silence, args.confusions)
                for speaker, errors in confusions.items():
                    print(f"{speaker}: " + ", ".join(f"{label} -> {tag} {100 * share:.1f} %" for label, tag, share in errors))
            return
        converters = conversion.Converters(factorizer, block, SimpleNamespace(conversion_source_level_db=0.0))
        rows = {conversion.COPY: converters.copy, conversion.REAL: converters.real,
                "frame-perfect (the target's aligned frames of the same sentence, own STFT)": converters.frame_perfect(True),
                "the default (auto: units with the tagger)": converters.with_audio("auto"),
                "cells, per-phone differences in the log-Mel frames (tagger)": converters.with_audio(
                    build("cells", tagger=True, space="features"))}
        results = conversion.evaluate_block(block, rows, block_judges(factorizer, args.recognizer), converters)
    lines = judged_table(results, [("spoof EER %", "spoof_eer", ".1f")], title="row (unseen stock voices, Harvard sentences)")
    speakers = VOICE_SETS[args.voices][0]
    lines += ["", f"{len(block.trials)} trials (seed {args.seed}) between the {len(speakers)} {args.voices} stock eSpeak NG "
              f"voices ({', '.join(voice for _, _, voice in speakers)}); references {min(seconds):.1f}-{max(seconds):.1f} s "
              f"per target (3 sentences); model {args.model}. Verified: cosine to the target's enrolment at least "
              f"{results['threshold']:.3f}, the real readings' equal-error threshold (their EER {results['real_eer']:.1f} %). "
              + tagged]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
