"""A trained f-DNF (or NF, DNF, VAE) as a SpeechBrain inference interface.

Every training run writes ``<output_folder>/inference/`` (see
:mod:`speechbrain_fdnf.export`); any other recipe can then do::

    from speechbrain_fdnf.inference import SpeechFactorizer
    factorizer = SpeechFactorizer.from_hparams(source="results/fdnf/1234/inference")
    codes = factorizer.encode("utt.wav")                       # {"z": ..., "phone": ..., "speaker": ..., ...}
    vector = factorizer.factor_embedding("utt.wav", "speaker")  # utterance-level speaker vector
    feats = factorizer.manipulate("utt.wav", "speaker", "MABC0")
    codes = factorizer.encode_batch(wavs, wav_lens)             # a padded batch, as SpeechBrain interfaces take

Single-utterance methods take a path (any format, sample rate and channel count
soundfile reads: loaded through SpeechBrain's ``Pretrained.load_audio``, resampled
to the model's rate and mixed down), a 1-D waveform tensor at the model's sample
rate, or a ``(..., frames, features)`` tensor of log-Mel features as the recipe
computes them. The ``*_batch`` methods take ``(wavs, wav_lens)`` like every
SpeechBrain interface. Outputs are raw (un-normalised) features.

One vocabulary for codes: a lobe's ``encode`` returns ``(output, log_det)`` (the
transform contract); :meth:`FeatureFlow.encode <speechbrain_fdnf.engine.FeatureFlow.encode>`
returns the code tensor ``z``; this interface's :meth:`SpeechFactorizer.encode` and
:meth:`SpeechFactorizer.encode_batch` return ``{"z": z, <factor>: its subspace, ...,
"residual": ...}``. The math lives in :class:`speechbrain_fdnf.engine.FeatureFlow`;
this class loads the model, reads audio, checks inputs and turns class names into indices.

Authors
 * speechbrain-fdnf developers
"""

from collections import deque
from pathlib import Path

import numpy as np
import torch
from speechbrain.dataio.preprocess import AudioNormalizer
from speechbrain.inference.interfaces import Pretrained

from speechbrain_fdnf.data.audio import check_audio
from speechbrain_fdnf.engine import FeatureFlow
from speechbrain_fdnf.export import (
    load_decoder,
    load_state_strict,  # noqa: F401  (named by folders exported before 0.2)
)
from speechbrain_fdnf.factors import FRAME_LEVEL_LABELS, is_frame_level
from speechbrain_fdnf.features import splice
from speechbrain_fdnf.lobes.precision import full_float32
from speechbrain_fdnf.matching import (
    EDGE_FRAMES,
    UNIT_INTONATIONS,
    UNIT_JOINS,
    UNIT_NEIGHBOUR_DISTANCES,
    UNIT_STRETCHES,
    FrameMatcher,
    context_mismatch,
    continuous_selection,
    gated_distances,
    segment_selection,
    utterance_starts,
)
from speechbrain_fdnf.pitch import REGISTERS_FILE, F0Registers, standardised_log_f0
from speechbrain_fdnf.tagging import load_tagger
from speechbrain_fdnf.target_audio import TargetAudio
from speechbrain_fdnf.validation import AudioCheck, InputError


#: An input the model cannot take (unreadable file, no speech, NaN samples, wrong shape); the one-line
#: message names the input and what was measured (the name the interface had before 0.6).
InferenceInputError = InputError
#: Identity memo of the waveforms checked last: a waveform that one call checked and passes on (the
#: converter's input to the model's features, enrolment audio to the references) is not checked, nor
#: warned about, twice.
CHECKED_MEMORY = 16


class SpeechFactorizer(Pretrained):
    """Encodes, decodes and manipulates speech with a trained factorial flow.

    Build it with :meth:`from_hparams` from a folder that
    :func:`speechbrain_fdnf.export.export_model` wrote (the training recipe
    does this at the end of every run).

    Example
    -------
    >>> from hyperpyyaml import load_hyperpyyaml
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> from speechbrain.processing.features import InputNormalization
    >>> from speechbrain_fdnf.export import export_model
    >>> from speechbrain_fdnf.lobes import with_class_counts
    >>> folder = getfixture("tmp_path")
    >>> _ = (folder / "train.yaml").write_text('''
    ... sample_rate: 16000
    ... context: 0
    ... input_dim: 40
    ... compute_features: !new:speechbrain.lobes.features.Fbank {n_mels: 40}
    ... model: !new:speechbrain_fdnf.lobes.DiscriminativeFlow
    ...     flow: !new:speechbrain_fdnf.lobes.RealNVP {input_dim: 40, num_blocks: 2, hidden_size: 16}
    ...     prior: !new:speechbrain_fdnf.lobes.FactorialGaussianPrior
    ...         factors: [{name: speaker, dim: 4}]
    ...         residual_dim: 36
    ...         mean_init: random
    ... ''')
    >>> model = with_class_counts(load_hyperpyyaml((folder / "train.yaml").read_text())["model"], {"speaker": 2})
    >>> normalize = InputNormalization(norm_type="global")
    >>> _ = normalize(torch.randn(100, 1, 40) * 3 + 1, torch.ones(100), epoch=0)
    >>> speakers = CategoricalEncoder(); speakers.update_from_iterable(["MABC0", "FXYZ0"])
    >>> _ = export_model(folder / "inference", model, normalize, {"speaker": speakers}, folder / "train.yaml")
    >>> factorizer = SpeechFactorizer.from_hparams(source=folder / "inference")
    >>> wav = torch.randn(16000) * 0.1
    >>> codes = factorizer.encode(wav)
    >>> codes["speaker"].shape, codes["residual"].shape
    (torch.Size([101, 4]), torch.Size([101, 36]))
    >>> feats = factorizer.features(wav)
    >>> torch.allclose(factorizer.decode(codes["z"]), feats, atol=1e-3)
    True
    >>> torch.allclose(factorizer.manipulate(feats, "speaker", "MABC0", source="MABC0"), feats, atol=1e-3)
    True
    """

    MODULES_NEEDED = ["model", "normalize"]
    HPARAMS_NEEDED = ["compute_features", "sample_rate", "context", "input_dim", "encoders"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Pretrained's default normalizer resamples to 16 kHz: this model's files go to its own rate.
        if getattr(self.hparams, "audio_normalizer", None) is None:
            self.audio_normalizer = AudioNormalizer(sample_rate=self.hparams.sample_rate)
        #: What every waveform must pass (speech found, finite, in range; enrolment sets: enough speech);
        #: its fields are the thresholds, e.g. ``factorizer.audio_check.min_enrol_speech = 1.0``.
        self.audio_check = AudioCheck(sample_rate=self.hparams.sample_rate,
                                      window=self.hparams.compute_features.compute_STFT.win_length)
        self._checked = deque(maxlen=CHECKED_MEMORY)

    def __setattr__(self, name, value):
        # torch's Module.__setattr__ files a module value under _modules before a property's setter can see it (the
        # setter of `tagger` would never run): a property of this class is set through its setter
        if isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", **kwargs):
        """Loads the interface from a local folder written by :func:`~speechbrain_fdnf.export.export_model`.

        Arguments
        ---------
        source : str or Path
            The folder (``<output_folder>/inference`` of a training run).
        hparams_file : str
            The yaml inside it.
        **kwargs
            Passed on to SpeechBrain's ``Pretrained.from_hparams`` (e.g.
            ``run_opts={"device": "cuda:0"}``).
        """
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder {folder} does not exist (train a model first; "
                                    "the recipe writes <output_folder>/inference)")
        needed = [hparams_file, "model.ckpt", "normalize.ckpt"]
        missing = [name for name in needed if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"model folder {folder} lacks {missing}: it is not an exported model")
        overrides = dict(kwargs.pop("overrides", None) or {}, pretrained_path=str(folder.resolve()))
        # A local source is loaded in place: no savedir, so no links or copies are made.
        return super().from_hparams(source=str(folder.resolve()), hparams_file=hparams_file,
                                    overrides=overrides, **kwargs)

    # ------------------------------------------------------------------ the model and its labels
    @property
    def model(self):
        """The trained ``DiscriminativeFlow`` (or ``VAE``)."""
        return self.mods.model

    @property
    def engine(self):
        """The :class:`~speechbrain_fdnf.engine.FeatureFlow` that does the math on raw features."""
        if getattr(self, "_engine", None) is None:
            self._engine = FeatureFlow(self.mods.model, self.mods.normalize)
        return self._engine

    @property
    def factors(self):
        """Names of the factors with their own subspace (empty for NF and the VAE)."""
        return self.engine.factors

    @property
    def decoders(self):
        """``{factor: ClassSequenceDecoder}`` of the model folder (frame-level factors; empty for a folder
        without them, e.g. exported before 0.3): the matching gate decodes those factors with them."""
        if getattr(self, "_decoders", None) is None:
            folder = getattr(self.hparams, "pretrained_path", None)  # None: built from hparams in memory
            found = {name: load_decoder(folder, name) for name in FRAME_LEVEL_LABELS
                     if folder is not None and name in self.factors}
            self._decoders = {name: decoder.to(self.device) for name, decoder in found.items() if decoder is not None}
        return self._decoders

    @decoders.setter
    def decoders(self, decoders):
        """Replaces the folder's decoders (e.g. fitted to a folder exported without them)."""
        self._decoders = {name: decoder.to(self.device) for name, decoder in decoders.items()}

    @property
    def tagger(self):
        """The contextual phone tagger of the model folder (:mod:`speechbrain_fdnf.tagging`; ``None`` without
        one, or for a model without a phone subspace): when present, the gates of :meth:`match` and
        :meth:`select` take each frame's phone from it instead of the frame-wise posteriors decoded with
        the bigram."""
        if not hasattr(self, "_tagger"):
            folder = getattr(self.hparams, "pretrained_path", None)
            self._tagger = load_tagger(folder, self.device) if folder is not None and "phone" in self.factors else None
        return self._tagger

    @tagger.setter
    def tagger(self, tagger):
        """Replaces the folder's tagger (``None``: gate with the model's own decoded posteriors)."""
        self._tagger = None if tagger is None else tagger.to(self.device).eval()

    @property
    def f0_registers(self):
        """The training speakers' F0 registers of the model folder (:class:`~speechbrain_fdnf.pitch.F0Registers`;
        ``None`` for a folder without them): a conversion through WORLD to a training speaker named by its
        label moves F0 to that speaker's register."""
        if not hasattr(self, "_f0_registers"):
            folder = getattr(self.hparams, "pretrained_path", None)
            path = None if folder is None else Path(folder) / REGISTERS_FILE
            self._f0_registers = F0Registers.load(path) if path is not None and path.is_file() else None
        return self._f0_registers

    @f0_registers.setter
    def f0_registers(self, registers):
        """Replaces the folder's registers (``None``: a speaker named by its label keeps the source's pitch)."""
        self._f0_registers = registers

    def tagged_phones(self, feats):
        """The tagger's phone index for every frame of ``(..., frames, features)`` model features (one
        utterance per sequence), flattened as the gate's codes are."""
        return torch.cat([self.tagger.tag(sequence) for sequence in self._tagger_sequences(feats)])

    def tagged_posteriors(self, feats):
        """The tagger's phone posteriors ``(n, phones)`` for every frame of ``(..., frames, features)`` model
        features (one utterance per sequence), flattened as the gate's codes are."""
        return torch.cat([self.tagger.log_posteriors(sequence).exp() for sequence in self._tagger_sequences(feats)])

    def _tagger_sequences(self, feats):
        """``(..., frames, features)`` model features as the tagger's utterances: its bands, one per sequence."""
        return feats.reshape(-1, feats.shape[-2], feats.shape[-1])[..., self.centre_bands]

    def _uses_tagger(self, tagged, kept):
        """Whether the phone of the kept factors comes from the folder's tagger (asked for, present, kept)."""
        return tagged and "phone" in kept and self.tagger is not None

    def labels(self, factor):
        """The class names of a label set, in index order."""
        encoder = self._encoder(factor)
        return [encoder.ind2lab[i] for i in range(len(encoder))]

    def class_index(self, factor, label):
        """The index of class ``label`` (name or index) of ``factor``; unknown labels are an error."""
        encoder = self._encoder(factor)
        if isinstance(label, int) and not isinstance(label, bool):
            if not 0 <= label < len(encoder):
                raise ValueError(f"{factor} index {label} is out of range [0, {len(encoder)})")
            return label
        if label not in encoder.lab2ind:
            known = self.labels(factor)
            listed = ", ".join(map(str, known[:10])) + (", ..." if len(known) > 10 else "")
            raise ValueError(f"unknown {factor} {label!r}: the model knows {len(known)} ({listed}); "
                             "for a new speaker give enrolment audio instead")
        return encoder.lab2ind[label]

    @property
    def centre_bands(self):
        """The columns of :meth:`features` that hold the centre frame's bands (all of them without context splicing)."""
        n_mels = self.hparams.compute_features.compute_fbanks.n_mels
        return slice(self.hparams.context * n_mels, (self.hparams.context + 1) * n_mels)

    # ------------------------------------------------------------------ inputs
    def load_audio(self, path, savedir=None):
        """A file as a mono waveform at the model's sample rate, through SpeechBrain's ``Pretrained.load_audio``:
        any format soundfile reads (WAV, FLAC, OGG, NIST SPHERE), any sample rate (resampled), any
        number of channels (averaged). A missing, empty, unreadable or truncated file is an
        :class:`InferenceInputError` naming it."""
        check_audio(path, error=InferenceInputError, mono=False)
        return super().load_audio(str(path), savedir=savedir)

    def read_wav(self, path):
        """:meth:`load_audio` (its name before 0.5)."""
        return self.load_audio(path)

    def waveform(self, inputs, name=None):
        """A path or waveform as the checked 1-D waveform at the model's rate that features are computed from.

        Files go through :meth:`load_audio`; a waveform (tensor, numpy array; integer samples are
        scaled to [-1, 1]) must be at the model's sample rate. Both then pass :attr:`audio_check`
        (:class:`~speechbrain_fdnf.validation.AudioCheck`): refused with an :class:`InferenceInputError`
        naming ``name`` (default: the path, or ``"waveform"``) where it is empty, shorter than one
        analysis window, not finite, beyond full scale or without speech; an
        :class:`~speechbrain_fdnf.validation.InputWarning` where it is clipped, off-centre or has
        little speech.
        """
        return self._checked_waveform(inputs, name)[0]

    def _checked_waveform(self, inputs, name=None):
        """``(waveform, seconds of speech)``; a waveform this interface returned before is not checked again."""
        for wav, version, speech in self._checked:
            if inputs is wav and inputs._version == version:
                return wav, speech
        if isinstance(inputs, (str, Path)):
            name, inputs = name or str(inputs), self.load_audio(inputs)
        wav, speech = self.audio_check.utterance(inputs, name or "waveform")
        wav = wav.to(self.device)
        self._checked.append((wav, wav._version, speech))
        return wav, speech

    @staticmethod
    def _is_audio(inputs):
        """Whether ``inputs`` is a file or a waveform (anything else is taken for features)."""
        if isinstance(inputs, (str, Path)):
            return True
        return np.ndim(inputs) <= 1 if isinstance(inputs, (np.ndarray, list, tuple)) or torch.is_tensor(inputs) else False

    @torch.no_grad()
    def features(self, inputs, name=None):
        """Raw log-Mel features ``(frames, input_dim)`` of a path or waveform (checked by :meth:`waveform`,
        which ``name`` is passed to), as the recipe computes them.

        A feature tensor ``(..., frames, input_dim)`` is returned unchanged after a shape and finiteness check.
        """
        name = name or (str(inputs) if isinstance(inputs, (str, Path)) else None)
        if self._is_audio(inputs):
            wav = self.waveform(inputs, name)
            with full_float32():  # the Mel filterbank's product: on a GPU as on a CPU, not in TensorFloat-32
                return splice(self.hparams.compute_features(wav[None])[0], self.hparams.context)
        try:
            inputs = torch.as_tensor(inputs)
        except (TypeError, ValueError, RuntimeError) as err:
            raise InferenceInputError(f"{name or 'input'}: neither audio nor features ({err})") from None
        if not inputs.dtype.is_floating_point or inputs.dtype.is_complex:
            raise InferenceInputError(f"{name or 'features'}: values of type {str(inputs.dtype).replace('torch.', '')}, "
                                      "expected float features (or pass a 1-D waveform)")
        if inputs.shape[-1] != self.hparams.input_dim or inputs.dim() < 2 or inputs.shape[-2] == 0:
            raise InferenceInputError(
                f"{name or 'features'}: shape {tuple(inputs.shape)}, expected (..., frames, {self.hparams.input_dim}) "
                "features (or a 1-D waveform; mix several channels down first)")
        if not torch.isfinite(inputs).all():
            bad = int((~torch.isfinite(inputs)).sum())
            raise InferenceInputError(f"{name or 'features'}: {bad} of {inputs.numel()} values are NaN or Inf")
        return inputs.to(self.device, torch.float32)

    def checked_references(self, references):
        """An enrolment set (one input or a list) with every audio item checked by :meth:`waveform` (and
        returned as that waveform; feature tensors as they are), and the set's total speech by
        :meth:`AudioCheck.enrolment <speechbrain_fdnf.validation.AudioCheck.enrolment>`: what
        :meth:`enrol`, :meth:`transfer`, :meth:`match`, :meth:`select` and the converter refuse, in one place.
        A :class:`~speechbrain_fdnf.target_audio.TargetAudio` was checked when it was built: its items as they are."""
        if isinstance(references, TargetAudio):
            return references.items
        if isinstance(references, (str, Path)) or torch.is_tensor(references):  # one waveform, or one utterance's features
            references = [references]
        if references is None or len(references) == 0:
            raise InferenceInputError("enrolment: no reference audio given")
        items, speech, names = [], [], []
        for index, item in enumerate(references, start=1):
            if self._is_audio(item):
                name = str(item) if isinstance(item, (str, Path)) else f"reference {index}"
                item, seconds = self._checked_waveform(item, name)
                speech.append(seconds)
                names.append(name)
            items.append(item)
        if speech:
            self.audio_check.enrolment(speech, names)
        return items

    def target_audio(self, references):
        """Audio of a target (one input or a list: paths, waveforms, or feature tensors), checked as by
        :meth:`checked_references`, as a :class:`~speechbrain_fdnf.target_audio.TargetAudio` that computes its
        features, codes, tagged phones and F0 register once however many calls read them. Pass it wherever
        references are taken to analyse a target once for many conversions. One of this factorizer is returned
        as it is; one of another model is rebuilt from its (checked) items, as the other model's analysis is
        not this one's."""
        if isinstance(references, TargetAudio):
            if references.factorizer is self:
                return references
            references = references.items
        return TargetAudio(self, self.checked_references(references))

    def load_target_audio(self, path):
        """A target's audio and analysis written by :meth:`TargetAudio.save
        <speechbrain_fdnf.target_audio.TargetAudio.save>` (the converter's ``--save_enrolment``), for this model:
        :meth:`TargetAudio.load <speechbrain_fdnf.target_audio.TargetAudio.load>` (what it checks, what it computes
        again)."""
        return TargetAudio.load(self, path)

    def analysed(self, inputs, name=None):
        """One utterance (a path, a waveform, or ``(..., frames, features)`` features), checked as :meth:`features`
        checks it (an error names ``name``, default the path), as a :class:`~speechbrain_fdnf.target_audio.TargetAudio`
        of one item: its features, codes and tagged posteriors computed the first time they are read. Every
        method that takes ``inputs`` takes it, so that calls reading one utterance analyse it once (the converter
        hands the source from ``units``' match to its fallback). One of this factorizer is returned as it is."""
        if isinstance(inputs, TargetAudio):
            if len(inputs) != 1:
                raise InferenceInputError(f"one utterance is analysed, got {len(inputs)} references")
            if inputs.factorizer is self:
                return inputs
            inputs = inputs.items[0]
        name = name or (str(inputs) if isinstance(inputs, (str, Path)) else None)
        item = self.waveform(inputs, name) if self._is_audio(inputs) else inputs
        return TargetAudio(self, [item], names=[name])

    # ------------------------------------------------------------------ the model
    @torch.no_grad()
    def encode(self, inputs):
        """Latent codes per subspace.

        Returns
        -------
        dict
            ``"z"``: the whole latent ``(..., frames, latent_dim)``; one entry
            per factor and ``"residual"`` with its subspace (flows with a prior).
        """
        return self._codes(self.engine.encode(self.features(inputs)))

    def _codes(self, z):
        """``{"z": z, <subspace>: its part of z, ...}`` (only ``"z"`` for a model without a factor prior)."""
        codes = {"z": z}
        prior = self.engine.prior
        if prior is not None:
            for name in prior.slices:
                codes[name] = prior.subspace(z, name)
        return codes

    # ------------------------------------------------------------------ batches, as SpeechBrain interfaces take them
    @torch.no_grad()
    def features_batch(self, wavs, wav_lens=None):
        """Raw log-Mel features ``(batch, frames, input_dim)`` of a padded batch of waveforms, and each item's
        number of valid frames.

        Arguments
        ---------
        wavs : torch.Tensor
            ``(batch, samples)`` waveforms at the model's sample rate, padded at the end.
        wav_lens : torch.Tensor, optional
            ``(batch,)`` relative lengths in ``(0, 1]`` (SpeechBrain's convention); all 1 if omitted.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            The features (frames past an item's length are padding, zero) and ``(batch,)`` frame counts.
        """
        try:
            wavs = torch.as_tensor(wavs)
            wav_lens = torch.ones(len(wavs)) if wav_lens is None else torch.as_tensor(wav_lens, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise InferenceInputError(f"batch: not a tensor of waveforms and relative lengths ({err})") from None
        if wavs.dim() != 2:
            raise InferenceInputError(f"batch: wavs of shape {tuple(wavs.shape)}, expected (batch, samples)")
        if len(wavs) == 0:
            raise InferenceInputError("batch: empty (0 items)")
        if wav_lens.shape != (len(wavs),) or not torch.isfinite(wav_lens).all() or (wav_lens <= 0).any() \
                or (wav_lens > 1).any():
            raise InferenceInputError(f"batch: wav_lens must be {len(wavs)} relative lengths in (0, 1], "
                                      f"got {wav_lens.tolist()}")
        samples = (wav_lens * wavs.shape[1]).round().long()
        items = [self.features(wav[:length], f"batch item {index}")
                 for index, (wav, length) in enumerate(zip(wavs, samples.tolist()))]
        frames = torch.tensor([len(item) for item in items])
        return torch.nn.utils.rnn.pad_sequence(items, batch_first=True), frames

    @torch.no_grad()
    def encode_batch(self, wavs, wav_lens=None):
        """:meth:`encode` of a padded batch: ``{"z": (batch, frames, latent_dim), <subspace>: ...}`` and the
        ``(batch,)`` frame counts (codes past an item's count are those of padding frames)."""
        feats, frames = self.features_batch(wavs, wav_lens)
        return self._codes(self.engine.encode(feats)), frames

    @torch.no_grad()
    def factor_embedding_batch(self, wavs, wav_lens=None, factor="speaker"):
        """:meth:`factor_embedding` of each item of a padded batch: ``(batch, subspace dim)``, means over
        each item's own frames only."""
        codes, frames = self.encode_batch(wavs, wav_lens)
        valid = (torch.arange(codes["z"].shape[1])[None, :] < frames[:, None]).to(self.device)
        sums = (codes[self._check_factor(factor)] * valid[..., None]).sum(dim=1)
        return sums / frames.to(sums)[:, None]

    @torch.no_grad()
    def manipulate_batch(self, wavs, wav_lens, factor, target, deviation=1.0):
        """:meth:`manipulate` of each item of a padded batch toward one ``target``: ``(batch, frames, input_dim)``
        raw features and the ``(batch,)`` frame counts (the source class is inferred from each item's own frames)."""
        feats, frames = self.features_batch(wavs, wav_lens)
        moved = torch.zeros_like(feats)
        for index, count in enumerate(frames.tolist()):
            moved[index, :count] = self.manipulate(feats[index, :count], factor, target, deviation=deviation)
        return moved, frames

    @torch.no_grad()
    def decode(self, z):
        """Raw features of latent codes (the ``"z"`` of :meth:`encode`, or that dict)."""
        if isinstance(z, dict):
            z = z["z"]
        return self.engine.decode(z.to(self.device))

    @torch.no_grad()
    def log_likelihood(self, inputs, labels=None):
        """Per-frame ``log p(x)`` in nats of the raw features (change of variables through the normalisation).

        Arguments
        ---------
        inputs
            Path, waveform or features.
        labels : dict, optional
            Factor -> class name (for the whole utterance) or per-frame index
            tensor; a factor left out is marginalised over its classes.
        """
        feats = self.features(inputs)
        known = {name: self._class_tensor(name, value, feats.shape[:-1]) for name, value in (labels or {}).items()}
        return self.engine.log_likelihood(feats, known)

    @torch.no_grad()
    def class_posterior(self, inputs, factor):
        """``p(class | frame)`` of ``factor`` under the prior, ``(..., frames, num_classes)``."""
        return self.engine.prior.class_posterior(self.encode(inputs)["z"], self._check_factor(factor))

    @torch.no_grad()
    def factor_embedding(self, inputs, factor="speaker"):
        """An utterance-level vector of ``factor``: the mean of its latent codes over frames.

        For the speaker factor this is a speaker embedding (its dimension is
        the subspace size); it is also the enrolment mean used as a target.
        """
        return self.encode(inputs)[self._check_factor(factor)].mean(dim=-2)

    @torch.no_grad()
    def enrol(self, inputs, factor="speaker"):
        """The target mean of a class unseen in training: the mean code over all frames of ``inputs``.

        ``inputs`` is one input or a list of them (e.g. several utterances of
        a new speaker); pass the result as ``target`` to :meth:`manipulate`.
        Audio is checked as an enrolment set: every item as by :meth:`waveform`,
        and together at least ``audio_check.min_enrol_speech`` seconds of speech
        (2 s unless changed; a warning below ``weak_enrol_speech``).
        """
        self._check_factor(factor)
        target = self.target_audio(inputs)
        if all(feats.dim() == 2 for feats in target.features):  # one utterance each: the codes the converter reads
            return self._codes(target.codes)[factor].mean(dim=0)
        codes = [self._codes(self.engine.encode(feats))[factor] for feats in target.features]
        return torch.cat([c.reshape(-1, c.shape[-1]) for c in codes]).mean(dim=0)

    @torch.no_grad()
    def manipulate(self, inputs, factor, target, source=None, deviation=1.0):
        """``x' = f(f^-1(x) + mu_target - mu_source)`` in ``factor``'s subspace, for every frame.

        Arguments
        ---------
        inputs
            Path, waveform or features (all frames are moved).
        factor : str
            One of :attr:`factors`.
        target : str, int or torch.Tensor
            Class name, class index, or a mean vector in the factor's subspace
            (e.g. from :meth:`enrol` for a speaker unseen in training).
        source : str, int, torch.Tensor or None
            The current class, a per-frame index tensor, or a mean vector.
            ``None``: the class the prior finds most likely, per frame for
            frame-level factors (phone) and for the whole input otherwise.
        deviation : float
            Share of each frame's deviation from the source class mean kept in
            the factor's subspace: 1 (default) is the paper's shift, 0 puts the
            target class mean there (beyond the paper; ``docs/RESULTS.md``
            measures the trade-off).

        Returns
        -------
        torch.Tensor
            Manipulated raw features, the shape of :meth:`features`.
        """
        feats = self.features(inputs)
        self._check_factor(factor)
        if torch.is_tensor(source) and not source.dtype.is_floating_point and source.dim() > 0:
            source = self._class_tensor(factor, source, feats.shape[:-1])
        elif source is not None:
            source = self._class(factor, source)
        return self.engine.manipulate(feats, factor, source, self._class(factor, target),
                                      pooled=not is_frame_level(factor), deviation=deviation)

    @torch.no_grad()
    def match(self, inputs, factor, references, k=4, gate=True, smooth=1, decode=True, tagged=True):
        """Non-parametric manipulation (kNN-VC style): every frame becomes the mean of the ``k`` frames of
        ``references`` nearest to it in the subspaces of the *other* factors.

        ``references`` are inputs of the target class (e.g. a few utterances of
        the target speaker, who need not be a training speaker); matching in
        the other factors' subspaces keeps them (e.g. the phone) while the new
        frames come from the target. With ``gate`` (beyond kNN-VC), a frame is
        matched only among reference frames to which the model assigns the
        frame's own class of every kept factor, inferred from the model's own
        subspaces: a frame-level factor (the phone) decoded along each
        utterance with the model folder's :attr:`decoders` (a phone bigram at
        the frame rate), or without one, or with ``decode=False``, from the
        ``2 smooth + 1`` frames around each frame; any other factor from the
        whole input or reference. Where fewer than ``k`` reference frames
        qualify, all of them are used. On the embedded corpus the gate keeps
        the other factor closer to the real-frame ceiling in both
        manipulations, decoding more so than the window (``docs/RESULTS.md``).

        Arguments
        ---------
        inputs
            Path, waveform or features (``(frames, dim)``, or ``(batch, frames, dim)``
            for several utterances of one length).
        factor : str
            The factor to change; the model needs at least one other factor.
        references
            One input or a list of them, each one utterance (all frames are the pool).
        k : int
            Neighbours averaged.
        gate : bool
            Match within the model's inferred kept classes (see above).
        smooth : int
            Half-width of the window a frame-level factor is inferred over without decoding.
        decode : bool
            Decode a frame-level factor where the model folder has a decoder for it.
        tagged : bool
            Where the folder has a contextual phone tagger (:attr:`tagger`), the gate's phone comes from it
            (``False``: from the model's own posteriors, as without one).

        Returns
        -------
        torch.Tensor
            Raw features, the shape of :meth:`features`.
        """
        space = self._matching_space(inputs, factor, references, k, gate, smooth, decode, tagged)
        return space["matcher"](space["codes"], space["pool_codes"], space["pool"], **space["classes"]).reshape(
            space["feats"].shape)

    @torch.no_grad()
    def select(self, inputs, factor, references, candidates=8, continuity=1.0, gate=True, smooth=1, decode=True,
               tagged=True, context=0.0, features=False):
        """For every frame of ``inputs``, one real frame of ``references``: near it in the kept factors'
        subspaces (as :meth:`match`, gated the same way) and, through ``continuity``, in runs of consecutive
        reference frames (:func:`~speechbrain_fdnf.matching.continuous_selection`). Resynthesising the
        chosen frames' own audio (``convert(..., method="select")``) carries everything of the target
        that the model's 40 bands lose: its pitch, harmonics and fine spectral envelope.

        Arguments
        ---------
        inputs
            Path, waveform or ``(frames, dim)`` features of one utterance.
        factor, references, gate, smooth, decode, tagged
            As :meth:`match`.
        candidates : int
            Nearest reference frames considered per frame.
        continuity : float
            Cost of a jump between reference frames, in units of the median nearest distance (0: the nearest).
        context : float
            With ``gate``: the cost of a reference frame whose neighbouring phones (the segments before and after
            its own) both differ from the frame's, in the same unit (half of it for one); 0: context unseen.
        features : bool
            Return the chosen reference frames' raw features instead of their indices.

        Returns
        -------
        torch.Tensor
            ``(frames,)`` indices into the reference frames, concatenated in the order of ``references``; with
            ``features``, ``(frames, dim)``: those frames' raw features.
        """
        space = self._matching_space(inputs, factor, references, candidates, gate, smooth, decode, tagged)
        if space["feats"].dim() != 2:
            raise InferenceInputError(f"select takes one utterance, got features of shape {tuple(space['feats'].shape)}")
        matcher, classes = space["matcher"], space["classes"]
        # gated wherever one reference frame shares the frame's classes (a replacement is one real frame)
        distances = gated_distances(matcher.embed(space["codes"]), matcher.embed(space["pool_codes"]), 1,
                                    classes.get("query_classes"), classes.get("pool_classes"))
        successors = ~torch.roll(utterance_starts(space["lengths"]), -1)  # frame j + 1 follows j in its utterance
        if context and classes:  # a phone is heard in its neighbours' context: prefer references heard in the same
            nearest = distances.min(dim=1).values
            unit = nearest[torch.isfinite(nearest)].median() if torch.isfinite(nearest).any() else 1.0
            mismatch = context_mismatch(classes["query_classes"].cpu(), [len(distances)], classes["pool_classes"].cpu(),
                                        space["lengths"])
            distances = distances + context * unit * mismatch.to(distances.device)
        chosen = continuous_selection(distances, successors, candidates, continuity).cpu()
        return space["pool"][chosen.to(space["pool"].device)] if features else chosen

    @torch.no_grad()
    def select_units(self, inputs, factor, references, join=1.0, neighbours=1.0, duration=1.0, smooth=1, decode=True,
                     tagged=True, source_fallback=False, joins="fixed", intonation="ignored", stretch="uniform",
                     source_phones=(), neighbour_distance="identity", confident=0.0):
        """For every frame of ``inputs``, one real frame of ``references``, chosen a phone at a time: each run of
        one kept class (a phone, as the gate of :meth:`match` infers it) takes one whole run of the same class
        from the references, the nearest in the kept factors' subspaces over its three thirds and heard between
        the same neighbours, stretched onto the run's length
        (:func:`~speechbrain_fdnf.matching.segment_selection`). Where :meth:`select` may build a phone from
        frames of several renditions, here every phone is one rendition of the target's.

        Arguments
        ---------
        inputs
            Path, waveform or ``(frames, dim)`` features of one utterance.
        factor, references, smooth, decode, tagged
            As :meth:`match` (always gated).
        join : float
            Cost of consecutive runs taken from places that do not follow each other in a reference.
        neighbours : float
            Cost of a run heard between other neighbouring phones (half of it for one).
        duration : float
            Cost per unit of ``|log(length ratio)|`` between a run and its rendition.
        source_fallback : bool
            In the runs of a class the references lack, keep the input's own frames (index: the reference frames'
            count plus the input's frame) instead of the nearest reference frames of any class.
        joins : str
            ``"fixed"``: every join costs ``join``; ``"spectral"``: ``join`` times how far apart the log-Mel frames
            on either side of it lie, against the median over all the joins the references offer
            (:func:`~speechbrain_fdnf.matching.join_distances`).
        intonation : str
            ``"ignored"``; ``"source"``: a cost of 1 per standard deviation of log F0 between each run's pitch in
            the input's register and its rendition's in the references' (WORLD's tracker, the ``world`` extra):
            the input's intonation in the target's voice. Needs audio, not features.
        stretch : str
            ``"uniform"``: a rendition's frames stretched or squeezed alike onto the run; ``"middle"``: its first and
            last :data:`~speechbrain_fdnf.matching.EDGE_FRAMES` heard one to one, only its middle fitted.
        source_phones : sequence of str
            With ``source_fallback``, phones (the model's phone labels; those it lacks are ignored) whose runs keep
            the input's own frames although the references have them. Only where the phone is the one kept factor.
        neighbour_distance : str
            ``"identity"``: a neighbouring phone that differs costs ``neighbours``; ``"prior"``: ``neighbours``
            times how far apart the two phones' prior means lie in the kept factor's subspace (against the median
            over all pairs of phones): a rendition heard between phones like the input's costs little. Only where
            one factor is kept.
        confident : float
            With ``source_fallback`` and the tagger (``tagged``, the folder has one), the mean posterior the tagger
            must give a run's phone over the run for the run to take a rendition of it; a run below keeps the input's
            own frames, as a phone the references lack does (0: every run takes one).

        Returns
        -------
        torch.Tensor
            ``(frames,)`` indices into the reference frames, concatenated in the order of ``references`` (and,
            with ``source_fallback``, the input's frames after them).
        """
        for name, value, known in (("joins", joins, UNIT_JOINS), ("intonation", intonation, UNIT_INTONATIONS),
                                   ("stretch", stretch, UNIT_STRETCHES),
                                   ("neighbour_distance", neighbour_distance, UNIT_NEIGHBOUR_DISTANCES)):
            if value not in known:
                raise ValueError(f"{name} must be one of {list(known)}, got {value!r}")
        space = self._matching_space(inputs, factor, references, 1, True, smooth, decode, tagged)
        if space["feats"].dim() != 2:
            raise InferenceInputError(f"select_units takes one utterance, got features of shape {tuple(space['feats'].shape)}")
        matcher, classes = space["matcher"], space["classes"]
        pitch = {}
        if intonation == "source":
            references = self.checked_references(references)  # as _matching_space took them: audio comes back 1-D
            source = space["source"]
            if not source.audio or any(item.dim() != 1 for item in references):
                raise InferenceInputError("intonation 'source' measures pitch: pass audio, not features")
            rate = self.hparams.sample_rate
            pitch["query_pitch"], = standardised_log_f0([source.audio[0].cpu().numpy()], rate, [len(space["feats"])])
            pitch["pool_pitch"] = torch.cat(standardised_log_f0([item.cpu().numpy() for item in references], rate,
                                                                space["lengths"]))
        pool_frames = space["pool"][:, self.centre_bands].cpu() if joins == "spectral" else None
        own = ()
        if source_phones:
            if matcher.kept != ["phone"]:
                raise ValueError(f"source_phones names phones: the kept factors must be the phone alone, here {matcher.kept}")
            known = self._encoder("phone").lab2ind
            own = [known[name] for name in source_phones if name in known]
        distance = None
        if neighbour_distance == "prior":
            if len(matcher.kept) != 1:
                raise ValueError(f"neighbour_distance 'prior' measures one kept factor's classes, here {matcher.kept}")
            means = self.engine.prior.means(matcher.kept[0]).detach().float().cpu()
            distance = torch.cdist(means, means)
            distance = distance / distance[~torch.eye(len(means), dtype=torch.bool)].median().clamp_min(1e-8)
        confidence = None
        if confident > 0 and source_fallback and self._uses_tagger(tagged, matcher.kept):
            posteriors = space["source"].tagged_posteriors()  # read once with the phones, not tagged again
            confidence = posteriors.gather(1, classes["query_classes"].to(posteriors.device)[:, None])[:, 0].cpu()
        return segment_selection(matcher.embed(space["codes"]).cpu(), classes["query_classes"].cpu(),
                                 matcher.embed(space["pool_codes"]).cpu(), classes["pool_classes"].cpu(),
                                 space["lengths"], join=join, neighbours=neighbours, duration=duration,
                                 query_fallback=source_fallback, pool_frames=pool_frames,
                                 edges=EDGE_FRAMES if stretch == "middle" else 0, query_own=own,
                                 class_distance=distance, query_confidence=confidence, confident=confident,
                                 **pitch)

    @torch.no_grad()
    def transfer(self, inputs, factor, references, shrink=5.0, tagged=False, keep_phone=False, space="latent"):
        """Moves every frame by how the target's codes differ from the input's *for the frame's own kept class*.

        The paper's shift moves every frame by one vector, ``mu_target - mu_source``, in the factor's
        subspace. Here each frame ``x`` of class posterior ``p(c | x)`` (the kept frame-level factor,
        the phone) moves, over the whole latent, by ``sum_c p(c | x) (m_target,c - m_source,c)``, where
        ``m_s,c`` is the mean code of ``s``'s frames weighted by their ``p(c | frame)``, pulled toward
        ``s``'s overall mean code by ``shrink`` frames' worth (a class heard in few frames borrows the
        speaker's overall difference). The source statistics are the input's own frames, the target's
        those of ``references``: a speaker difference that depends on the phone, estimated from a few
        seconds of the target (beyond the paper; ``docs/RESULTS.md`` measures it).

        Arguments
        ---------
        inputs
            Path, waveform or ``(frames, dim)`` features of one utterance.
        factor : str
            The factor to change (its classes are never read: the target is the audio).
        references
            One input or a list of them: audio of the target.
        shrink : float
            Frames' worth of the overall mean in each class mean (large: the whole-latent mean difference).
        tagged : bool
            Where the folder has a contextual phone tagger (:attr:`tagger`) and the kept factor is the phone,
            ``p(c | x)`` is the tagger's posterior (it reads the whole utterance) instead of the prior's.
        keep_phone : bool
            Leave the kept frame-level factors' subspaces (the phone's) as they are: the difference moves the
            other subspaces only, as the paper's shift does (``False``, the default: the whole latent moves).
            A few seconds of the target estimate each phone's mean roughly, and the noise of that estimate in
            the phone's own subspace moves the words; but for a speaker the model never saw the speaker's
            subspace alone carries too little of the voice: kept, the output is closer to the target than to
            the source in half the trials (a coin). Chosen on unseen valid speakers (``docs/RESULTS.md`` 6c).
        space : str
            ``"latent"``: the differences of mean codes, decoded by the flow (the above); ``"features"``: the
            same per-class differences of the raw feature frames themselves, added to them with no flow (the
            classes' posteriors as above). On unseen voices it keeps more of the words and moves the voice a
            little less (``docs/RESULTS.md`` 6v).

        Returns
        -------
        torch.Tensor
            Raw features, the shape of :meth:`features`.
        """
        kept = [name for name in self.factors if name != self._check_factor(factor) and is_frame_level(name)]
        if not kept:
            raise ValueError(f"transfer conditions on a kept frame-level factor (the phone); this model has none besides {factor!r}")
        if space not in ("latent", "features"):
            raise ValueError(f"space must be 'latent' or 'features', got {space!r}")
        if keep_phone and space == "features":
            raise ValueError("keep_phone leaves the phone's subspace of the latent as it is: it needs space='latent'")
        source = self.analysed(inputs)
        feats = source.pool
        references = self.target_audio(references)
        tagger = self._uses_tagger(tagged, kept[:1])
        if space == "latent" or not tagger:  # the codes: where the difference is taken, or the prior's posteriors
            codes, target = source.codes, references.codes
        if tagger:
            source_posterior = source.tagged_posteriors().reshape(*feats.shape[:-1], -1)
            target_posterior = references.tagged_posteriors()
        else:
            source_posterior = self.engine.prior.class_posterior(codes, kept[0])
            target_posterior = self.engine.prior.class_posterior(target, kept[0])
        if space == "features":  # the same per-class means, of the raw frames, and no flow
            frames = references.pool.to(feats)
            difference = (shrunk_class_means(frames, target_posterior.to(frames), shrink)
                          - shrunk_class_means(feats, source_posterior.to(feats), shrink))
            return feats + source_posterior.to(feats) @ difference
        difference = (shrunk_class_means(target, target_posterior, shrink)
                      - shrunk_class_means(codes, source_posterior, shrink))
        if keep_phone:
            for name in kept:
                difference[:, self.engine.prior.slices[name]] = 0.0
        return self.engine.decode(codes + source_posterior.to(codes.device) @ difference)

    def _matching_space(self, inputs, factor, references, k, gate, smooth, decode, tagged=True):
        """What :meth:`match` and :meth:`select` share: the inputs analysed (:meth:`analysed`), their features and
        codes and those of the pool, the matcher of the kept factors and, with ``gate``, both sides' inferred classes."""
        kept = [name for name in self.factors if name != self._check_factor(factor)]
        if not kept:
            raise ValueError(f"matching keeps the other factors, and this model has none besides {factor!r}")
        references = self.target_audio(references)
        if any(item.dim() != 2 for item in references.features):
            raise InferenceInputError("references: one utterance each, (frames, features) or audio")
        pool, pool_codes, lengths = references.pool, references.codes, references.lengths
        source = self.analysed(inputs)
        feats, codes = source.pool, source.codes
        codes = codes.reshape(-1, codes.shape[-1])
        matcher = FrameMatcher(self.engine, kept, k, smooth, self.decoders if decode else None)
        classes = {}
        if gate:  # one utterance per input sequence and per reference
            queries = torch.arange(len(codes) // feats.shape[-2]).repeat_interleave(feats.shape[-2])
            keys = torch.arange(len(references)).repeat_interleave(torch.tensor(lengths))
            if self._uses_tagger(tagged, kept):  # both read from their analyses, so tagged once per call
                phones = {"phone": source.tagged_phones()}, {"phone": references.tagged_phones()}
            else:
                phones = {}, {}
            classes = {"query_classes": matcher.classes(codes, queries, phones[0]),
                       "pool_classes": matcher.classes(pool_codes, keys, phones[1])}
        return {"source": source, "feats": feats, "codes": codes, "pool": pool, "pool_codes": pool_codes,
                "matcher": matcher, "classes": classes, "lengths": lengths}

    def forward(self, wavs):
        """``encode`` of a waveform (SpeechBrain's convention for ``Pretrained.forward``)."""
        return self.encode(wavs)

    # ------------------------------------------------------------------ helpers
    def _encoder(self, name):
        encoders = self.hparams.encoders
        if name not in encoders:
            raise ValueError(f"unknown label set {name!r}; this model knows {sorted(encoders)}")
        return encoders[name]

    def _check_factor(self, factor):
        if factor not in self.factors:
            raise ValueError(f"the model has no {factor!r} factor; its factors: {self.factors or 'none (no class prior)'}")
        return factor

    def _class(self, factor, value):
        """A class name or index as an index; a mean vector (float tensor) as it is."""
        if torch.is_tensor(value) and value.dtype.is_floating_point:
            return value
        return self.class_index(factor, value)

    def _class_tensor(self, factor, value, shape):
        if torch.is_tensor(value):
            value = value.to(self.device).long()
            if value.numel() and (value.min() < 0 or value.max() >= len(self._encoder(factor))):
                raise ValueError(f"{factor} indices must lie in [0, {len(self._encoder(factor))})")
            return value.expand(shape)
        return torch.full(shape, self.class_index(factor, value), dtype=torch.long, device=self.device)


def shrunk_class_means(codes, posteriors, shrink):
    """``(classes, dim)``: each class's mean of ``codes`` weighted by ``posteriors`` ``(n, classes)``, with
    ``shrink`` pseudo-frames at the overall mean (a class without frames gets the overall mean).

    Example
    -------
    >>> codes = torch.tensor([[0.0], [2.0], [10.0]])
    >>> posteriors = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> shrunk_class_means(codes, posteriors, shrink=0.0)[:2].flatten().tolist()
    [1.0, 10.0]
    >>> shrunk_class_means(codes, posteriors, shrink=1.0).flatten().tolist()  # overall mean 4
    [2.0, 7.0, 4.0]
    """
    overall = codes.mean(dim=0)
    sums = posteriors.T @ codes + shrink * overall
    return sums / (posteriors.sum(dim=0)[:, None] + shrink).clamp_min(1e-8)


#: The name of :class:`SpeechFactorizer` before 0.2, kept so that existing code keeps working.
FactorialFlow = SpeechFactorizer

__all__ = ["FactorialFlow", "InferenceInputError", "SpeechFactorizer"]
