#!/usr/bin/env python3
"""Where WORLD's resynthesis loses words: the project's CTC phone recognizer on the valid trials of
``hparams/experiments/choose_world_voiced_far.yaml`` (the source utterances of its 40 trials, same- and
cross-gender apart), with nothing converted:

* the source itself, and WORLD's copy-synthesis (``world``; ``world_voiced``: WORLD in the frames its
  tracker voices, the source elsewhere) at several analysis settings (frame period; D4C's threshold, above
  which it sends a voiced frame to noise);
* the F0 alone moved to the trial target's register (the envelope untouched): what a pitch move costs.

A diagnostic, not a choice: no setting here becomes a default from this table.

Usage::

    python benchmarks/world_word_loss.py [--config hparams/experiments/choose_world_voiced_far.yaml] \\
        [--out benchmarks/latest_world_word_loss.md]
"""

import argparse
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.data.audio import as_written  # noqa: E402
from speechbrain_fdnf.evaluation import conversion  # noqa: E402
from speechbrain_fdnf.evaluation.config import EvaluationConfig  # noqa: E402
from speechbrain_fdnf.evaluation.judges import CTCPhoneJudge, PhoneErrorCounter, spoken_phones  # noqa: E402
from speechbrain_fdnf.files import read_prepared_split  # noqa: E402
from speechbrain_fdnf.inference import SpeechFactorizer  # noqa: E402
from speechbrain_fdnf.pitch import world_resynthesis  # noqa: E402
from speechbrain_fdnf.recipe_utils import load_config  # noqa: E402

#: ``(frame period in ms, D4C threshold)``: the converter's setting first.
SETTINGS = ((10.0, 0.85), (5.0, 0.85), (10.0, 0.0), (5.0, 0.0))


def world_copy(wav, sample_rate, period, threshold, voiced_only, target_f0=None):
    """The converter's WORLD resynthesis of ``wav`` with nothing changed but, given ``target_f0``, the F0;
    ``voiced_only``: the source itself outside the voiced frames (as ``world_voiced``)."""
    return world_resynthesis(wav, sample_rate, None, None, target_f0,
                             unvoiced=wav if voiced_only else None, frame_period=period, d4c_threshold=threshold)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="hparams/experiments/choose_world_voiced_far.yaml")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    config = EvaluationConfig.from_dict(load_config(args.config))
    root = Path(config.output_root)
    factorizer = SpeechFactorizer.from_hparams(root / "fdnf" / str(config.seeds[0]) / "inference")
    utterances = {"train": read_prepared_split(root / "prepared", "train"),
                  "heldout": read_prepared_split(root / "prepared", config.scored_split)}
    block = conversion.build_blocks(utterances, config.conversion_utterances, config.seeds[0], ["training speakers"],
                                    enrolment_speech=conversion.enrolment_problem(factorizer))[0]
    converters = conversion.Converters(factorizer, block, config)
    judge = CTCPhoneJudge(config.phone_recognizer, config.phone_recognizer_hparams,
                          features=lambda wav: factorizer.features(wav)[:, factorizer.centre_bands])
    rows = {"the source itself": lambda trial, wav: wav}
    for period, threshold in SETTINGS:
        for voiced_only in (False, True):
            name = f"{'world_voiced' if voiced_only else 'world'} copy, {period:g} ms frames, D4C threshold {threshold:g}"
            rows[name] = lambda trial, wav, p=period, t=threshold, v=voiced_only: world_copy(
                wav, converters.rate, p, t, v)
    for voiced_only in (False, True):
        rows[f"{'world_voiced' if voiced_only else 'world'}, F0 alone to the target's register (10 ms, 0.85)"] = \
            lambda trial, wav, v=voiced_only: world_copy(wav, converters.rate, 10.0, 0.85, v,
                                                         converters.register(trial.target, "dio"))
    lines = ["| resynthesis (nothing converted) | PER %, same-gender trials | PER %, cross-gender trials | PER %, all |",
             "|---|---|---|---|"]
    for name, make in rows.items():
        counters = {kind: PhoneErrorCounter() for kind in ("same", "cross", "all")}
        for trial in block.trials:
            out = make(trial, converters.audio(trial.source))
            phones = judge.phones(as_written(out))
            reference = spoken_phones(trial.source["phones39"])
            for kind in ("same" if trial.same_gender else "cross", "all"):
                counters[kind].add(reference, phones)
        lines.append(f"| {name} | " + " | ".join(f"{100 * counters[k].rate():.1f}" for k in ("same", "cross", "all"))
                     + " |")
        print(lines[-1], flush=True)
    text = f"`python benchmarks/world_word_loss.py --config {args.config}` ({len(block.trials)} valid trials)\n\n" + \
        "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
