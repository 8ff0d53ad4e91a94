#!/usr/bin/env python3
"""Where ``units`` loses words: the project's CTC phone recognizer on ``units`` conversions of valid trials
(speakers no model saw), the converter's own row (with ``--fallback nearest``: the nearest reference frames of any
phone where the references lack one, as every row but the two that replace it) beside the same unit selection run with

* the corpus's own phone labels for the source and the references instead of the tagger's (what a perfect
  phone gate would give);
* the tagger's posteriors (square roots: Euclidean distance is then Hellinger's) as the space the renditions
  are matched in, instead of the model's kept subspaces;
* the tagger's posteriors decoded along the utterance with the model folder's phone bigram (fewer flickers);
* all three costs (join, neighbours, duration) three times their default, and none of them;
* every rendition heard at its own length (the output takes the target's durations) instead of stretched or
  squeezed onto the source's phone;
* the source's log-Mel movement within each phone carried into its rendition (by gain);
* in the phones the references lack, the source's own frames, or the source converted by ``cells``, instead of
  the nearest reference frames of any phone;
* the converter's output through WORLD where WORLD hears voicing, nothing changed (as ``world_voiced``'s
  copy-synthesis: how much of what the judges read is the overlap-add itself);

each with its errors split into insertions, deletions and substitutions, DNSMOS's overall rating (the
evaluation's quality judge), the share of the source's frames in
phones the references lack (those fall back to frame-by-frame selection), how often the labels used name
the corpus's phone and how many runs of one phone they cut the source into. A diagnostic, not a choice: no
setting becomes a default from this table.

Usage::

    python benchmarks/units_word_loss.py [--model results_s2/fdnf/1234/inference] \\
        [--speakers results_s2/prepared_valid_speakers] [--trials 40] [--out benchmarks/latest_units_word_loss.md]
"""

import argparse
import collections
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.convert import FeatureInverter, convert, resynthesise_selected  # noqa: E402
from speechbrain_fdnf.data.audio import as_written  # noqa: E402
from speechbrain_fdnf.evaluation import conversion  # noqa: E402
from speechbrain_fdnf.evaluation.judges import CTCPhoneJudge, QualityJudge, SpeakerEncoderJudge, spoken_phones  # noqa: E402
from speechbrain_fdnf.files import hop_samples  # noqa: E402
from speechbrain_fdnf.inference import SpeechFactorizer  # noqa: E402
from speechbrain_fdnf.manipulations import Units  # noqa: E402
from speechbrain_fdnf.matching import FrameMatcher, segment_selection, segment_table, utterance_starts  # noqa: E402
from speechbrain_fdnf.pitch import world_resynthesis  # noqa: E402
from speechbrain_fdnf.tagging import UNLABELLED, silence_index, utterance_frames  # noqa: E402

#: ``(row, phones: "tagger" | "corpus" | "bigram", space: "codes" | "posteriors", cost scale)``; the converter's row first.
ROWS = (("units, tagger's phones (the converter's, --fallback nearest)", "tagger", "codes", 1.0),
        ("units, the corpus's phones", "corpus", "codes", 1.0),
        ("units, tagger's phones, matched on the tagger's posteriors", "tagger", "posteriors", 1.0),
        ("units, the tagger's posteriors decoded with the folder's phone bigram (scale 3)", "bigram", "codes", 1.0),
        ("units, tagger's phones, costs x3", "tagger", "codes", 3.0),
        ("units, tagger's phones, no costs", "tagger", "codes", 0.0),
        ("units, tagger's phones, each rendition at its own length", "tagger", "codes", 1.0),
        ("units, tagger's phones, the source's movement within each phone", "tagger", "codes", 1.0),
        ("units, tagger's phones, the source's own frames where the references lack its phone", "tagger", "codes", 1.0),
        ("units, tagger's phones, the source converted by cells where the references lack its phone", "tagger", "codes", 1.0))
#: The row that converts the source with cells in the phones the references lack.
CELLS_FALLBACK = ROWS[-1][0]
#: The row that keeps the source's frames in the phones the references lack.
OWN_FALLBACK = ROWS[-2][0]
#: The row that moves within each phone as the source does.
MOVEMENT = ROWS[-3][0]
#: The row that hears the renditions at their own lengths.
OWN_LENGTH = ROWS[-4][0]
#: The converter's output through WORLD's analysis and synthesis in its voiced frames.
THROUGH_WORLD = "units, the converter's output through WORLD in its voiced frames"


def whole_renditions(chosen, query, pool, pool_lengths):
    """``chosen`` (one pool frame per query frame, :func:`segment_selection`) with each query run that took a pool
    run of its own phone replaced by that pool run whole, at its own length; other runs (the fallback) as they are.
    ``pool_lengths``: frames of each pool utterance (a run never spans two).

    Example
    -------
    >>> # pool runs: [0, 1, 2] of phone 5, [3] of phone 6; the query's phone-5 run of 2 frames took frames 0 and 2
    >>> whole_renditions(torch.tensor([0, 2, 3, 3]), torch.tensor([5, 5, 6, 6]), torch.tensor([5, 5, 5, 6]), [4]).tolist()
    [0, 1, 2, 3]
    >>> # two pool utterances, [5, 5] and [5]: the run that took frame 2 is the second utterance's alone
    >>> whole_renditions(torch.tensor([2, 2]), torch.tensor([5, 5]), torch.tensor([5, 5, 5]), [2, 1]).tolist()
    [2]
    """
    query_first, query_count, query_class, _ = segment_table(query, utterance_starts([len(query)]))
    pool_first, pool_count, _, _ = segment_table(pool, utterance_starts(pool_lengths))
    pieces = []
    for first, count, phone in zip(query_first.tolist(), query_count.tolist(), query_class.tolist()):
        taken = chosen[first:first + count]
        if bool((pool[taken] == phone).all()):
            run = int(torch.searchsorted(pool_first, taken[0], right=True)) - 1
            pieces.append(torch.arange(pool_first[run], pool_first[run] + pool_count[run]))
        else:
            pieces.append(taken)
    return torch.cat(pieces)


class ErrorKinds:
    """Phone errors over utterances, by kind (SpeechBrain's edit distance), per reference phone.

    Example
    -------
    >>> kinds = ErrorKinds()
    >>> kinds.add(["k", "ae", "t"], ["k", "ah"])
    >>> kinds.rates()
    {'PER': 66.7, 'insertions': 0.0, 'deletions': 33.3, 'substitutions': 33.3}
    """

    KINDS = ("insertions", "deletions", "substitutions")

    def __init__(self):
        self.counts, self.reference = collections.Counter(), 0

    def add(self, reference, hypothesis):
        from speechbrain.utils.edit_distance import wer_details_for_batch

        details = wer_details_for_batch(["utterance"], [list(reference)], [list(hypothesis)])[0]
        self.counts.update({kind: details[kind] for kind in self.KINDS})
        self.reference += details["num_ref_tokens"]

    def rates(self):
        scale = 100 / max(self.reference, 1)
        return {"PER": round(sum(self.counts.values()) * scale, 1),
                **{kind: round(self.counts[kind] * scale, 1) for kind in self.KINDS}}


class AnyPhoneUnits(Units):
    """``units`` whose phones come from the caller (``phones``: features -> ``(frames,)`` phone index) and whose
    renditions are matched in ``space`` (``codes``: the kept subspaces, as the converter; ``posteriors``: the
    tagger's). ``last`` keeps the latest call's source phones and pool phones, ``lengths`` its pool utterances'
    frames."""

    def __init__(self, phones, space="codes", **options):
        super().__init__(**options)
        self.phones, self.space, self.last, self.lengths = phones, space, None, None

    def frames(self, factorizer, feats, factor, target=None, source=None, references=None, wav=None):
        # the converter hands both over analysed (SpeechFactorizer.analysed, .target_audio): their features, once
        query, pool = factorizer.analysed(wav).features[0], list(factorizer.target_audio(references).features)
        if self.space == "posteriors":
            points = factorizer.tagged_posteriors(query).sqrt(), torch.cat([factorizer.tagged_posteriors(item).sqrt() for item in pool])
        else:
            matcher = FrameMatcher(factorizer.engine, [name for name in factorizer.factors if name != factor])
            codes = factorizer.engine.encode(query)
            points = matcher.embed(codes.reshape(-1, codes.shape[-1])), matcher.embed(factorizer.engine.encode_all(torch.cat(pool)))
        self.last = self.phones(query, 0), torch.cat([self.phones(item, index) for index, item in enumerate(pool, 1)])
        self.lengths = [len(item) for item in pool]
        return segment_selection(points[0].cpu(), self.last[0], points[1].cpu(), self.last[1], self.lengths,
                                 join=self.join, neighbours=self.neighbours, duration=self.duration,
                                 query_fallback=self.fallback != "nearest")


def bigram_phones(factorizer, feats, scale=3.0):
    """The tagger's log posteriors of one utterance decoded with the model folder's phone bigram."""
    log_posteriors = factorizer.tagged_posteriors(feats).clamp_min(1e-12).log().cpu()
    return factorizer.decoders["phone"].decode(log_posteriors, torch.zeros(len(log_posteriors), dtype=torch.long), scale=scale).cpu()


def corpus_phones(factorizer, entry):
    """``(frames,)`` phone index of each frame of ``entry`` by the corpus's own segments, as the tagger is trained
    on them (:func:`~speechbrain_fdnf.tagging.utterance_frames`), silence where none covers a frame."""
    phones = utterance_frames(factorizer, {"entry": entry})["entry"][1]
    return torch.where(phones == UNLABELLED, silence_index(factorizer), phones)


def reference_spectra(factorizer, references):
    """``(inverter, the references' STFT frames concatenated, successors)``: what the converter overlap-adds
    selected frames from (``successors[j]``: frame ``j + 1`` follows frame ``j`` in its reference)."""
    inverter = FeatureInverter(factorizer.hparams.compute_features)
    spectra = [inverter.stft(item.float()[None])[0] for item in references]
    return inverter, torch.cat(spectra), ~torch.roll(utterance_starts([len(item) for item in spectra]), -1)


def own_length(factorizer, audio, units):
    """``units``' conversion of ``audio[0]`` from ``audio[1:]`` with every rendition at its own length."""
    inverter, spectra, successors = reference_spectra(factorizer, audio[1:])
    chosen = units.frames(factorizer, None, "speaker", references=audio[1:], wav=audio[0]).cpu()
    chosen = whole_renditions(chosen, *units.last, units.lengths)
    picked = inverter.selected_frames(spectra, chosen, successors)
    return inverter.istft(picked[None], sig_length=len(chosen) * hop_samples(factorizer.hparams.compute_features))[0]


def source_where_lacking(factorizer, audio, units, stand_in):
    """``units``' conversion of ``audio[0]`` with the STFT frames of ``stand_in`` (another conversion of the source)
    in its runs of a phone that the references ``audio[1:]`` lack, instead of the nearest reference frames of any
    phone (the converter's ``fallback="source"`` takes the source's own frames there)."""
    inverter, spectra, successors = reference_spectra(factorizer, audio[1:])
    chosen = units.frames(factorizer, None, "speaker", references=audio[1:], wav=audio[0]).cpu()
    query, pool = units.last
    picked = inverter.selected_frames(spectra, chosen, successors)
    lacking = ~torch.isin(query, pool)
    picked[lacking] = inverter.stft(stand_in.float()[None])[0][lacking]
    return inverter.istft(picked[None], sig_length=len(audio[0]))[0]


def run_means(feats, phones):
    """Each frame's mean over its run of one phone."""
    first, count, _, _ = segment_table(phones, utterance_starts([len(phones)]))
    run = torch.repeat_interleave(torch.arange(len(first)), count)
    sums = torch.zeros(len(first), feats.shape[1]).index_add_(0, run, feats)
    return (sums / count[:, None])[run]


def with_source_movement(factorizer, source, converted, phones):
    """``converted`` with, in every run of one phone, its log-Mel frames moving about their run's mean as the
    source's move about theirs (the rendition's mean kept): the target's timbre of each phone, the source's
    transitions into and out of it."""
    inverter = FeatureInverter(factorizer.hparams.compute_features)
    log_mel = lambda wav: factorizer.hparams.compute_features(wav[None].float())[0].cpu()  # noqa: E731 (unchecked: may pass full scale)
    mine, theirs = log_mel(source), log_mel(converted)
    moved = run_means(theirs, phones) + mine - run_means(mine, phones)
    return inverter.apply_gain(converted, theirs, moved)


def run_count(phones):
    """Runs of one phone in one utterance's ``phones``.

    Example
    -------
    >>> run_count(torch.tensor([3, 3, 1, 3]))
    3
    """
    return len(segment_table(phones, utterance_starts([len(phones)]))[0])


def fallback_share(query, pool):
    """``(frames in runs of a phone the pool lacks, frames)`` of the query's phones.

    Example
    -------
    >>> fallback_share(torch.tensor([1, 1, 2, 3, 3, 3]), torch.tensor([1, 3]))
    (1, 6)
    """
    _, count, label, _ = segment_table(query, utterance_starts([len(query)]))
    lacking = ~torch.isin(label, pool)
    return int(count[lacking].sum()), int(count.sum())


def trial_arguments(description, model="results_s2/fdnf/1234/inference"):
    """The command line of a diagnostic on valid trials (this script's, ``units_f0_gap.py``'s): the model folder,
    the prepared corpus of speakers apart from the model's, how many trials, their seed and the report's file."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default=model, help="an f-DNF folder with a tagger")
    parser.add_argument("--speakers", default="results_s2/prepared_valid_speakers",
                        help="a prepared corpus whose test split holds speakers apart from the model's (not the "
                             "one the choices are made on)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path)
    return parser


def block_judges(factorizer, recognizer):
    """The evaluation's judges for a diagnostic's :func:`conversion.evaluate_block`: Resemblyzer, the CTC phone
    recognizer of the folder ``recognizer`` on ``factorizer``'s log-Mel frames (``per_recognizer``), DNSMOS."""
    centre = factorizer.centre_bands
    judge = CTCPhoneJudge(recognizer, "hparams/phone_recognition.yaml", features=lambda wav: factorizer.features(wav)[:, centre])
    return conversion.ConversionJudges(SpeakerEncoderJudge(), {"per_recognizer": lambda wav, rate: judge.phones(wav)},
                                       quality=QualityJudge())


def judged_table(results, extra, title="row"):
    """Markdown lines of :func:`conversion.evaluate_block`'s ``results``: per row verified (all, same and cross
    gender), closer, PER, F0 gap and DNSMOS, with ``extra`` ``(heading, key, format)`` columns after closer."""
    lines = [f"| {title} | verified | same / cross-gender verified | closer | "
             + "".join(f"{heading} | " for heading, _, _ in extra) + "PER (CTC) % | F0 gap (st) | DNSMOS |",
             "|---" * (7 + len(extra)) + "|"]
    for name, row in results["rows"].items():
        lines.append(f"| {name} | {row['verified_as_target']:.3f} | {row['same_gender']['verified_as_target']:.2f} / "
                     f"{row['cross_gender']['verified_as_target']:.2f} | {row['closer_to_target']:.2f} | "
                     + "".join(f"{row[key]:{spec}} | " for _, key, spec in extra)
                     + f"{row['per_recognizer']:.1f} | {row['f0_gap_semitones']:.2f} | {row['dnsmos_ovrl']:.2f} |")
    return lines


def write_report(lines, block, args, measured):
    """Prints the table ``lines`` with a line on its trials and ``measured`` (how its numbers were taken), and
    writes it to ``args.out`` where given."""
    lines = lines + ["", f"{len(block.trials)} trials between the test speakers of {args.speakers} (speakers no model "
                     f"saw), drawn as the evaluation's valid-speaker block draws them (seed {args.seed}); model "
                     f"{args.model}; 3 references per target. {measured}"]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")


def main(argv=None):
    parser = trial_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--recognizer", default="results_s2/phone_recognition")
    args = parser.parse_args(argv)
    factorizer = SpeechFactorizer.from_hparams(source=args.model)
    if factorizer.tagger is None:
        raise SystemExit(f"{args.model} holds no phone tagger: python recipes/TIMIT/train_tagger.py hparams/phone_tagger.yaml")
    centre = factorizer.centre_bands
    judge = CTCPhoneJudge(args.recognizer, "hparams/phone_recognition.yaml", features=lambda wav: factorizer.features(wav)[:, centre])
    block = conversion.valid_speaker_block(factorizer, args.speakers, args.trials, args.seed)
    errors = collections.defaultdict(ErrorKinds)
    quality, rated = QualityJudge(), collections.defaultdict(list)
    rate = factorizer.hparams.sample_rate

    def judge_row(row, wav):
        errors[row].add(spoken, judge.phones(wav))
        rated[row].append(quality.scores(wav, rate)["ovrl"])

    lacking, named, runs = {}, {}, {}
    for number, trial in enumerate(block.trials, 1):
        entries = [trial.source] + block.material[trial.target].references
        audio = [factorizer.load_audio(entry["wav"]).cpu() for entry in entries]
        spoken = spoken_phones(trial.source["phones39"])
        judge_row("copy-synthesis (gain path)", audio[0])
        # every row but the fallback rows hears the nearest frames of any phone where the references lack one (the
        # converter's default before RESULTS 6w): the rows take the selection apart, not the fallback
        own = as_written(convert(factorizer, audio[0], "speaker", references=audio[1:], manipulation="units",
                                 fallback="nearest"))
        judge_row(ROWS[0][0], own)
        judge_row(THROUGH_WORLD, as_written(world_resynthesis(own, rate, None, None, unvoiced=own)))
        truth = corpus_phones(factorizer, trial.source)
        for row, phones, space, scale in ROWS:
            label = {"corpus": lambda feats, index: corpus_phones(factorizer, entries[index]),
                     "tagger": lambda feats, index: factorizer.tagged_phones(feats).cpu(),
                     "bigram": lambda feats, index: bigram_phones(factorizer, feats)}[phones]
            units = AnyPhoneUnits(label, space, join=scale, neighbours=scale, duration=scale,
                                  fallback="source" if row == OWN_FALLBACK else "nearest")  # the converter's option
            if row == CELLS_FALLBACK:
                wav = source_where_lacking(factorizer, audio, units, convert(factorizer, audio[0], "speaker", references=audio[1:],
                                                                             manipulation="cells"))
            elif row == MOVEMENT:
                wav = with_source_movement(factorizer, audio[0], resynthesise_selected(factorizer, audio[0], "speaker", audio[1:], units),
                                           units.last[0])
            elif row == OWN_LENGTH:
                wav = own_length(factorizer, audio, units)
            else:
                wav = resynthesise_selected(factorizer, audio[0], "speaker", audio[1:], units)
            wav = as_written(wav)  # as the evaluation judges it
            query, pool = units.last
            lacking[row] = lacking.get(row, 0) + torch.tensor(fallback_share(query, pool))
            named[row] = named.get(row, 0) + torch.tensor([int((query == truth).sum()), len(query)])
            runs[row] = runs.get(row, 0) + torch.tensor([run_count(query), run_count(truth)])
            if row == ROWS[0][0]:  # this copy of the converter's units must give the converter's audio
                if not torch.allclose(wav, own, atol=1e-5):
                    raise SystemExit(f"trial {number}: this benchmark's units differs from the converter's")
            else:
                judge_row(row, wav)
        print(f"trial {number}/{len(block.trials)}", file=sys.stderr)
    lines = ["| row | PER (CTC) % | insertions | deletions | substitutions | DNSMOS | source frames in phones the "
             "references lack % | source frames whose phone is the corpus's % | source runs of one phone per 100 of the "
             "corpus's |", "|---|---|---|---|---|---|---|---|---|"]
    for row, kinds in errors.items():
        rates = kinds.rates()
        share = lambda counts: f"{100 * counts[row][0] / counts[row][1]:.1f}" if row in counts else ""  # noqa: E731
        lines.append(f"| {row} | {rates['PER']} | {rates['insertions']} | {rates['deletions']} | "
                     f"{rates['substitutions']} | {sum(rated[row]) / len(rated[row]):.2f} | {share(lacking)} | "
                     f"{share(named)} | {share(runs)} |")
    write_report(lines, block, args, "Per 100 reference phones.")


if __name__ == "__main__":
    main()
