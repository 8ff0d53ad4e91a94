"""Audio of a conversion's target, checked once and analysed at most once.

Every manipulation that works from audio of the target reads the same things of it: its log-Mel frames, their
codes under the flow, the contextual tagger's phones, and (for a conversion through WORLD) the target's F0
register. :class:`TargetAudio` holds the checked references and computes each of these the first time it is
asked, so one conversion never analyses its references twice (``units`` and its ``cells`` fallback read the
same codes) and a caller converting many utterances to one voice analyses the voice once::

    target = factorizer.target_audio(["t1.wav", "t2.wav", "t3.wav"])  # checked here: a bad file fails now
    for path in sources:
        convert(factorizer, path, "speaker", references=target)

Everywhere a list of references is taken (:meth:`SpeechFactorizer.enrol <speechbrain_fdnf.inference.SpeechFactorizer.enrol>`,
``transfer``, ``match``, ``select``, ``select_units``, :func:`speechbrain_fdnf.convert.convert`), a
:class:`TargetAudio` of the same factorizer may be given instead: the results are the same
(``benchmarks/bench_conversion.py`` measures what it saves). The utterance being converted is held the same way,
as one item (:meth:`SpeechFactorizer.analysed <speechbrain_fdnf.inference.SpeechFactorizer.analysed>`), so that
``units``' match and its fallback encode it once.

A target's analysis also outlives the process: :meth:`TargetAudio.save` writes the checked audio with its codes,
tagged posteriors and F0 register, and :meth:`TargetAudio.load` (``SpeechFactorizer.load_target_audio``, the
command line's ``--enrolment``) reads them back for a model that analyses the audio as the saving one did, so that
a conversion per call (one file per command) need not analyse its 9 s of reference again::

    factorizer.target_audio(["t1.wav", "t2.wav", "t3.wav"]).save("target.pt")
    convert(factorizer, "source.wav", "speaker", references=factorizer.load_target_audio("target.pt"))

Authors
 * speechbrain-fdnf developers
"""

import logging
from pathlib import Path

import torch

from speechbrain_fdnf.files import atomic_write
from speechbrain_fdnf.pitch import DEFAULT_F0_TRACKER, F0_TRACKERS, LogF0Statistics, tracker_settings
from speechbrain_fdnf.validation import InputError

logger = logging.getLogger(__name__)

#: What a file written by :meth:`TargetAudio.save` says it is, and the version of its layout.
SAVED_FORMAT = "speechbrain-fdnf analysed target"
SAVED_VERSION = 1
#: What such a file holds besides those two.
SAVED_FIELDS = {"sample_rate", "names", "audio", "codes", "tagged", "tagger_check", "registers"}
#: Frames of the first reference whose codes and tagged posteriors a loading model computes again and compares with
#: the saved ones: a model whose weights, normalisation, features or tagger differ analyses them otherwise.
CHECKED_FRAMES = 50
#: How far (absolute) a loading model's analysis of those frames may lie from the saved one for the saved analysis
#: to be used (the codes of one model on a GPU and on a CPU: 3e-5, docs/RESULTS.md 6zb); beyond it the audio is
#: analysed again.
AGREEMENT = 1e-3


class TargetAudio:
    """Checked references of one target (or one utterance to convert), with what the converter reads of them, each
    computed once.

    Build it with :meth:`SpeechFactorizer.target_audio <speechbrain_fdnf.inference.SpeechFactorizer.target_audio>`
    (which checks the audio: every item as an utterance, all together as an enrolment set), or for one utterance
    with :meth:`SpeechFactorizer.analysed <speechbrain_fdnf.inference.SpeechFactorizer.analysed>`.

    Arguments
    ---------
    factorizer : SpeechFactorizer
        The model whose features, flow and tagger analyse the references.
    items : list
        The checked references (or the one utterance): 1-D waveforms at the model's rate, or ``(frames, features)``
        feature tensors.
    names : list, optional
        What an error names each item by (default ``reference 1``, ``reference 2``, ...; ``None``: as
        :meth:`SpeechFactorizer.features <speechbrain_fdnf.inference.SpeechFactorizer.features>` names its input).
    """

    def __init__(self, factorizer, items, names=None):
        self.factorizer = factorizer
        self.items = list(items)
        self.names = list(names) if names is not None else [f"reference {index}" for index in range(1, len(self.items) + 1)]
        self._computed = {}

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return f"TargetAudio({len(self.items)} references, {sum(self.lengths)} frames)"

    def _once(self, key, compute):
        if key not in self._computed:
            self._computed[key] = compute()
        return self._computed[key]

    @property
    def audio(self):
        """The items that are waveforms (1-D), in order."""
        return [item for item in self.items if torch.is_tensor(item) and item.dim() == 1]

    @property
    def features(self):
        """Raw features of each item (:meth:`SpeechFactorizer.features`)."""
        return self._once("features", lambda: [self.factorizer.features(item, name)
                                               for item, name in zip(self.items, self.names)])

    @property
    def lengths(self):
        """Frames of each item."""
        return [item.shape[-2] for item in self.features]

    @property
    def pool(self):
        """Every item's frames, ``(frames, features)``, in order."""
        return self._once("pool", lambda: torch.cat(self.features))

    @property
    def codes(self):
        """The pool's latent codes under the flow (``engine.encode_all``)."""
        return self._once("codes", lambda: self.factorizer.engine.encode_all(self.pool))

    def tagged_posteriors(self):
        """The folder's contextual tagger's phone posteriors of every pool frame, each item read whole (recomputed
        if the factorizer's tagger is replaced)."""
        tagger = self.factorizer.tagger
        return self._once(("tagged", id(tagger)),
                          lambda: torch.cat([self.factorizer.tagged_posteriors(item) for item in self.features]))

    def tagged_phones(self):
        """The tagger's phone of every pool frame, each item's read off :meth:`tagged_posteriors` as the tagger reads
        an utterance's (:meth:`FrameTagger.phones`)."""
        posteriors = self.tagged_posteriors()
        utterance = torch.repeat_interleave(torch.arange(len(self.lengths)), torch.tensor(self.lengths))
        # the posteriors are kept as probabilities; one that underflowed stays the least likely
        return self.factorizer.tagger.phones(posteriors.clamp_min(1e-30).log(), utterance.to(posteriors.device))

    def register(self, tracker=DEFAULT_F0_TRACKER):
        """The target's F0 register (:class:`~speechbrain_fdnf.pitch.LogF0Statistics`) over the audio items, by
        ``tracker``."""
        rate = self.factorizer.hparams.sample_rate
        return self._once(("register", tracker),
                          lambda: LogF0Statistics.of_audio([item.cpu() for item in self.audio], rate, tracker))

    def _tagger_check(self):
        """The tagger's posteriors of the first :data:`CHECKED_FRAMES` frames of the first item read alone (``None``
        without a tagger): what :meth:`load` compares."""
        if self.factorizer.tagger is None:
            return None
        return self.factorizer.tagged_posteriors(self.features[0][:CHECKED_FRAMES])

    def save(self, path):
        """Writes the (checked) audio with its codes, its tagged posteriors (where the model folder has a tagger) and
        its F0 register by every tracker asked for so far (by :data:`~speechbrain_fdnf.pitch.DEFAULT_F0_TRACKER` at
        least), computing what is not yet, to ``path`` (``torch.save``; read back with :meth:`load`): under 1 MB for
        9 s of reference at 16 kHz.

        Raises
        ------
        InputError
            Where an item is features, not audio (a saved target is loaded as audio and checked again).
        """
        if len(self.audio) != len(self.items):
            raise InputError(f"{path}: a target is saved as audio, and {len(self.items) - len(self.audio)} of its "
                             f"{len(self.items)} references are features")
        tagged = self.tagged_posteriors() if self.factorizer.tagger is not None else None
        try:
            self.register()
        except ValueError as error:  # too little voicing for a register: loaded without one, measured (and refused) again
            logger.info("%s: saved without an F0 register (%s)", path, error)
        registers = {tracker_settings(key[1]): [value.mean, value.std, value.frames]
                     for key, value in self._computed.items() if isinstance(key, tuple) and key[0] == "register"}
        with atomic_write(path) as tmp:  # a killed save leaves no half-written target
            torch.save({"format": SAVED_FORMAT, "version": SAVED_VERSION,
                        "sample_rate": int(self.factorizer.hparams.sample_rate),
                        "names": list(self.names), "audio": [item.detach().float().cpu() for item in self.audio],
                        "codes": self.codes.detach().cpu(), "tagged": None if tagged is None else tagged.detach().cpu(),
                        "tagger_check": None if tagged is None else self._tagger_check().detach().cpu(),
                        "registers": registers}, str(tmp))

    @classmethod
    def load(cls, factorizer, path):
        """A target written by :meth:`save`, for ``factorizer``: its audio checked again as fresh references are
        (:meth:`SpeechFactorizer.checked_references <speechbrain_fdnf.inference.SpeechFactorizer.checked_references>`),
        its features computed (cheap), and each saved analysis used only where this model computes it alike: the
        codes where its flow encodes the first :data:`CHECKED_FRAMES` frames as saved (within :data:`AGREEMENT`),
        the tagged posteriors where besides its tagger tags them alike (the codes' check also catches features
        computed otherwise), a register where the tracker's settings are the same
        (:func:`~speechbrain_fdnf.pitch.tracker_settings`). Anything else is computed again when first read, as for
        audio given anew (a log line says so).

        Raises
        ------
        InputError
            Naming ``path``: no such file, not a file :meth:`save` writes (or written by a newer version), audio at
            another sample rate than the model's; or, naming a reference, audio the checks refuse.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file (a target's analysis is written by TargetAudio.save, or by the "
                             "converter's --save_enrolment)")
        try:
            saved = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:  # torch's unpickling errors have no common type
            raise InputError(f"{path}: not a saved target ({type(error).__name__}: {str(error).splitlines()[0]})") from None
        if not isinstance(saved, dict) or saved.get("format") != SAVED_FORMAT:
            raise InputError(f"{path}: not a saved target (written by TargetAudio.save)")
        if saved.get("version", 0) > SAVED_VERSION:
            raise InputError(f"{path}: a saved target of layout version {saved['version']}, newer than this package "
                             f"reads ({SAVED_VERSION}): upgrade speechbrain-fdnf, or analyse the audio again")
        missing = sorted(SAVED_FIELDS - set(saved))
        if missing or not saved["audio"] or not all(torch.is_tensor(item) for item in saved["audio"]):
            raise InputError(f"{path}: a damaged saved target ({'no ' + ', '.join(missing) if missing else 'no audio'})")
        rate = int(factorizer.hparams.sample_rate)
        if saved["sample_rate"] != rate:
            raise InputError(f"{path}: audio at {saved['sample_rate']} Hz, and this model works at {rate} Hz: analyse "
                             "the target's recordings again with this model")
        names = [f"{path} ({name})" for name in saved["names"]]
        items = [factorizer.waveform(item.to(factorizer.device), name) for item, name in zip(saved["audio"], names)]
        factorizer.checked_references(items)  # the enrolment's total speech (each item already checked above)
        target = cls(factorizer, items, names)
        codes, kept = saved["codes"], []
        check = target.pool[:CHECKED_FRAMES]
        if codes.shape[0] == len(target.pool) and _agrees(factorizer.engine.encode_all(check), codes[:len(check)]):
            target._computed["codes"] = codes.to(factorizer.engine.device)
            kept.append("codes")
        if saved["tagged"] is not None and factorizer.tagger is not None and "codes" in kept:
            if _agrees(target._tagger_check(), saved["tagger_check"]):
                target._computed[("tagged", id(factorizer.tagger))] = saved["tagged"].to(factorizer.device)
                kept.append("tagged posteriors")
        for tracker in F0_TRACKERS:
            register = saved["registers"].get(tracker_settings(tracker))
            if register is not None:
                target._computed[("register", tracker)] = LogF0Statistics(float(register[0]), float(register[1]),
                                                                          int(register[2]))
                kept.append(f"{tracker} register")
        again = [name for name in ("codes", "tagged posteriors") if name not in kept
                 and (name == "codes" or factorizer.tagger is not None)]
        logger.info("%s: %d references; saved analysis used: %s%s", path, len(items), ", ".join(kept) or "none",
                    f"; analysed again: {', '.join(again)} (this model analyses the first frames otherwise)" if again else "")
        return target


def _agrees(computed, saved):
    """Whether a loading model's analysis lies within :data:`AGREEMENT` of the saved one, everywhere."""
    return computed.shape == saved.shape and bool((computed.cpu() - saved).abs().max() <= AGREEMENT)


__all__ = ["TargetAudio"]
