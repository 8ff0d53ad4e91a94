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

Authors
 * speechbrain-fdnf developers
"""

import torch

from speechbrain_fdnf.pitch import DEFAULT_F0_TRACKER, LogF0Statistics


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
        """The tagger's phone of every pool frame (the most likely under :meth:`tagged_posteriors`)."""
        return self.tagged_posteriors().argmax(dim=-1)

    def register(self, tracker=DEFAULT_F0_TRACKER):
        """The target's F0 register (:class:`~speechbrain_fdnf.pitch.LogF0Statistics`) over the audio items, by
        ``tracker``."""
        rate = self.factorizer.hparams.sample_rate
        return self._once(("register", tracker),
                          lambda: LogF0Statistics.of_audio([item.cpu() for item in self.audio], rate, tracker))


__all__ = ["TargetAudio"]
