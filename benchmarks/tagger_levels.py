#!/usr/bin/env python3
"""How the contextual phone tagger hears recordings at other levels than its training corpus's: its frame
accuracy (speech frames, the corpus's 39 folded phones) on unseen speakers' utterances as recorded and scaled
by a few gains, for each model folder given (each with its tagger). Log-Mel frames move by the gain in dB in
every band: a tagger normalised by the training frames' statistics (``normalization: global``) meets frames
it never saw; one that takes each utterance's own mean per band away first (``utterance``) meets the same
frames at any level. A report, not a choice.

Usage::

    python benchmarks/tagger_levels.py [--models results_s2/fdnf/1234/inference results_s2/fdnf_cmn/1234/inference] \\
        [--speakers results_s2/prepared_valid_speakers] [--every 4] [--out benchmarks/latest_tagger_levels.md]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechbrain_fdnf.files import read_prepared_split  # noqa: E402
from speechbrain_fdnf.inference import SpeechFactorizer  # noqa: E402
from speechbrain_fdnf.tagging import frame_accuracy, silence_index, utterance_frames  # noqa: E402

#: The levels (dB against the recording) the tagger hears each utterance at.
LEVELS_DB = (0.0, -6.0, -12.0, -24.0)


def at_level(factorizer, frames, entries, level_db):
    """``frames`` (:func:`~speechbrain_fdnf.tagging.utterance_frames`) with each utterance's log-Mel frames
    computed from its audio ``level_db`` louder, its labels kept."""
    gain, centre = 10 ** (level_db / 20), factorizer.centre_bands
    return {uid: (factorizer.features(factorizer.load_audio(entries[uid]["wav"]) * gain)[:, centre].float().cpu(), labels)
            for uid, (_, labels) in frames.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["results_s2/fdnf/1234/inference",
                                                         "results_s2/fdnf_cmn/1234/inference"])
    parser.add_argument("--speakers", default="results_s2/prepared_valid_speakers",
                        help="a prepared corpus whose test split holds speakers no model saw")
    parser.add_argument("--every", type=int, default=4, help="every so many of its test utterances")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    entries = read_prepared_split(args.speakers, "test")
    entries = dict(sorted(entries.items())[::args.every])
    lines = [f"# The tagger's frame accuracy at other levels ({len(entries)} utterances of the test speakers of "
             f"`{args.speakers}`, speech frames)", "",
             "| model folder | tagger normalisation | " + " | ".join(f"{level:+g} dB" for level in LEVELS_DB) + " |",
             "|---|---|" + "---|" * len(LEVELS_DB)]
    for folder in args.models:
        factorizer = SpeechFactorizer.from_hparams(source=folder)
        if factorizer.tagger is None:
            raise SystemExit(f"{folder} holds no phone tagger")
        frames, silence = utterance_frames(factorizer, entries), silence_index(factorizer)
        cells = [f"{100 * frame_accuracy(factorizer.tagger.tag, at_level(factorizer, frames, entries, level), silence):.1f} %"
                 for level in LEVELS_DB]
        normalisation = factorizer.tagger.config.get("normalization", "global")
        lines.append(f"| `{folder}` | {normalisation} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
