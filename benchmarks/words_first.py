#!/usr/bin/env python3
"""Whether keeping the source's own audio keeps its words and still moves its voice: the evaluation's judges
(Resemblyzer's verification against the target's enrolment, the CTC phone recognizer, Praat's median F0, DNSMOS)
on conversions that change the source's audio instead of replacing its frames, beside the default (``units``,
the target's renditions) and copy-synthesis, on valid trials (speakers no model saw). A diagnostic, not a choice:
no setting becomes a default from this table (docs/RESULTS.md 6v).

The rows that keep the source's audio:

* the f-DNF's ``cells`` (each frame moved by the per-phone difference of the target's and the source's mean codes,
  the tagger's phones) and the same difference taken in the log-Mel frames themselves, with no flow (``cells
  --space features``);
* Praat's ``Change gender`` (pitch-synchronous overlap-add; parselmouth): the source's median F0 moved to the
  target's references' (its intonation's range kept: a spread measured on 9 s of a voice with octave errors
  in it can ask for a range Praat cannot synthesise, and gives silence), its formants kept or scaled by one ratio fitted on the
  references (the ratio whose warp of the source's per-phone mean log-Mel spectra lies nearest the target's, the
  phones both have: vocal-tract-length normalisation's single warp).

Usage::

    python benchmarks/words_first.py [--model results_s2/fdnf_cmn/1234/inference] \\
        [--speakers results_s2/prepared_valid_speakers] [--trials 40] [--out benchmarks/latest_words_first.md]
"""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling diagnostic's command line and report

from speechbrain_fdnf.evaluation import conversion  # noqa: E402
from speechbrain_fdnf.inference import SpeechFactorizer  # noqa: E402
from speechbrain_fdnf.manipulations import build  # noqa: E402
from speechbrain_fdnf.pitch import DEFAULT_F0_TRACKER  # noqa: E402
from units_word_loss import block_judges, judged_table, trial_arguments, write_report  # noqa: E402

#: The formant ratios searched (Praat's ``Change gender`` takes 0.5 to 2; one vocal tract against another of
#: the same sex or across sexes lies within about 20 %).
RATIOS = np.exp(np.linspace(np.log(0.8), np.log(1.25), 41))
#: Praat's pitch range for the analysis (its default ceiling; a floor under the lowest voice here).
PITCH_FLOOR, PITCH_CEILING = 60.0, 600.0


def warped(spectra, centres, ratio):
    """Log-Mel ``spectra`` ``(..., bands)`` (bands centred at ``centres`` Hz) with every frequency scaled by
    ``ratio``: the value at ``f`` is the original's at ``f / ratio``.

    Example
    -------
    >>> centres = np.array([100.0, 200.0, 300.0, 400.0])
    >>> warped(np.array([0.0, 1.0, 2.0, 3.0]), centres, 2.0).tolist()
    [0.0, 0.0, 0.5, 1.0]
    """
    return np.stack([np.interp(centres / ratio, centres, row) for row in np.atleast_2d(spectra)]).reshape(np.shape(spectra))


def fitted_ratio(source_means, target_means, weights, centres, ratios=RATIOS):
    """The ratio of ``ratios`` whose :func:`warped` source means (``(phones, bands)``, each about its own mean
    level) lie nearest the target's, weighted per phone by ``weights``, over the bands the warp keeps in range.

    Example
    -------
    >>> centres = np.linspace(100, 4000, 40)
    >>> source = np.exp(-((centres - 1000) / 300) ** 2)[None]
    >>> target = np.exp(-((centres - 1100) / 330) ** 2)[None]
    >>> float(fitted_ratio(source, target, np.ones(1), centres, ratios=np.array([0.9, 1.0, 1.1, 1.2])))
    1.1
    """
    centred = lambda spectra: spectra - spectra.mean(axis=-1, keepdims=True)  # noqa: E731
    target = centred(target_means)
    costs = []
    for ratio in ratios:
        inside = centres / ratio <= centres[-1]
        distance = ((centred(warped(source_means, centres, ratio)) - target)[:, inside] ** 2).mean(axis=1)
        costs.append(float((weights * distance).sum() / weights.sum()))
    return ratios[int(np.argmin(costs))]


class SourceKeeping:
    """The conversions that keep the source's audio, for one model folder (its tagger names the phones)."""

    def __init__(self, factorizer, converters):
        self.factorizer, self.converters = factorizer, converters
        self.centre = factorizer.centre_bands
        weights = converters.inverter.matrix.numpy()
        freqs = np.linspace(0, factorizer.hparams.sample_rate / 2, weights.shape[0])
        self.band_centres = (weights * freqs[:, None]).sum(axis=0) / weights.sum(axis=0)

    def frames_and_posteriors(self, wavs):
        feats = [self.factorizer.features(wav) for wav in wavs]
        return (torch.cat([item[:, self.centre] for item in feats]).cpu(),
                torch.cat([self.factorizer.tagged_posteriors(item) for item in feats]).cpu())

    def formant_ratio(self, trial):
        """The target's vocal tract against the source's (:func:`fitted_ratio` on the phones the tagger names in
        both, each weighted by its frames in the rarer side)."""
        source, source_posterior = self.frames_and_posteriors([self.converters.source(trial)])
        target, target_posterior = self.frames_and_posteriors(self.converters.references(trial.target))
        source_phones, target_phones = source_posterior.argmax(-1), target_posterior.argmax(-1)
        shared = [p for p in source_phones.unique().tolist() if int((target_phones == p).sum()) >= 3
                  and int((source_phones == p).sum()) >= 3]
        means = lambda frames, phones: np.stack([frames[phones == p].mean(0).numpy() for p in shared])  # noqa: E731
        weights = np.array([min(int((source_phones == p).sum()), int((target_phones == p).sum())) for p in shared], float)
        return fitted_ratio(means(source, source_phones), means(target, target_phones), weights, self.band_centres)

    def change_gender(self, formants):
        """Praat's ``Change gender`` toward each trial's target: median F0 to the references', formants scaled by
        :meth:`formant_ratio` (``formants``) or kept."""
        import parselmouth
        from parselmouth.praat import call

        rate = self.converters.rate

        def run(trial):
            wav = self.converters.source(trial)
            target = self.converters.register(trial.target, DEFAULT_F0_TRACKER)
            ratio = float(self.formant_ratio(trial)) if formants else 1.0
            sound = parselmouth.Sound(wav.double().numpy(), sampling_frequency=rate)
            out = call(sound, "Change gender", PITCH_FLOOR, PITCH_CEILING, ratio, float(np.exp(target.mean)), 1.0, 1.0)
            changed = torch.nan_to_num(torch.from_numpy(out.values[0]).float())
            return torch.nn.functional.pad(changed, (0, max(0, len(wav) - len(changed))))[: len(wav)]

        return run


def main(argv=None):
    parser = trial_arguments(__doc__.split("\n\n")[0], model="results_s2/fdnf_cmn/1234/inference")
    parser.add_argument("--recognizer", default="results_s2/phone_recognition")
    args = parser.parse_args(argv)
    factorizer = SpeechFactorizer.from_hparams(source=args.model)
    if factorizer.tagger is None:
        raise SystemExit(f"{args.model} holds no phone tagger: python recipes/TIMIT/train_tagger.py hparams/phone_tagger.yaml")
    block = conversion.valid_speaker_block(factorizer, args.speakers, args.trials, args.seed)
    converters = conversion.Converters(factorizer, block, SimpleNamespace(conversion_source_level_db=0.0))
    keeping = SourceKeeping(factorizer, converters)
    rows = {conversion.COPY: converters.copy, conversion.REAL: converters.real,
            "default (units, the target's renditions)": converters.with_audio("units"),
            "cells, tagger (the f-DNF's per-phone difference)": converters.with_audio(build("cells", tagger=True)),
            "cells' per-phone difference in the log-Mel frames (no flow)": converters.with_audio(
                build("cells", tagger=True, space="features")),
            "the source, F0 to the target's register (Praat's Change gender)": keeping.change_gender(formants=False),
            "the source, F0 moved and formants scaled by a fitted ratio (Change gender)": keeping.change_gender(formants=True)}
    results = conversion.evaluate_block(block, rows, block_judges(factorizer, args.recognizer), converters)
    lines = judged_table(results, [("cosine to the target", "cos_target", ".3f")])
    write_report(lines, block, args, f"Verified: cosine to the target's enrolment at least {results['threshold']:.3f}, "
                                     f"the real readings' equal-error threshold (their EER {results['real_eer']:.1f} %).")


if __name__ == "__main__":
    main()
