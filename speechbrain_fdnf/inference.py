"""A trained f-DNF (or NF, DNF, VAE) as a SpeechBrain inference interface.

The training recipe writes ``<output_folder>/inference/``: ``hyperparams.yaml``
(features, normalisation, model, label encoders, a ``Pretrainer``) next to
``model.ckpt``, ``normalize.ckpt`` and one ``<label>_encoder.txt`` per label
set. Any other recipe can then do::

    from speechbrain_fdnf.inference import FactorialFlow
    flow = FactorialFlow.from_hparams(source="results/fdnf/1234/inference")
    codes = flow.encode("utt.wav")                       # {"phone": ..., "speaker": ..., ...}
    vector = flow.factor_embedding("utt.wav", "speaker")  # utterance-level speaker vector
    feats = flow.manipulate("utt.wav", "speaker", "MABC0")

Inputs are a path, a 1-D waveform tensor at the model's sample rate, or a
``(..., frames, features)`` tensor of log-Mel features as the recipe
computes them. Outputs are raw (un-normalised) features.

Authors
 * speechbrain-fdnf developers
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
import yaml
from speechbrain.dataio.dataio import read_audio
from speechbrain.inference.interfaces import Pretrained

from speechbrain_fdnf.brain import unwrap
from speechbrain_fdnf.data.frames import FRAME_LEVEL_LABELS
from speechbrain_fdnf.data.timit import check_audio
from speechbrain_fdnf.lobes.priors import squared_distances
from speechbrain_fdnf.experiment import FEATURE_KEYS

logger = logging.getLogger(__name__)


_SPEC = "tag:yaml.org,2002:"


class InferenceInputError(ValueError):
    """An input the model cannot take (wrong sample rate, channels, shape); the message names it."""


class FactorialFlow(Pretrained):
    """Encodes, decodes and manipulates speech with a trained factorial flow.

    Build it with :meth:`from_hparams` from a folder written by :meth:`export`
    (the training recipe does this at the end of every run).

    Example
    -------
    >>> import tempfile, torch
    >>> from hyperpyyaml import load_hyperpyyaml
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> from speechbrain.processing.features import InputNormalization
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.yaml").write_text('''
    ... model: !new:speechbrain_fdnf.lobes.DiscriminativeFlow
    ...     flow: !new:speechbrain_fdnf.lobes.RealNVP {input_dim: 40, num_blocks: 2, hidden_size: 16}
    ...     prior: !new:speechbrain_fdnf.lobes.FactorialGaussianPrior
    ...         factors: [{name: speaker, dim: 4}]
    ...         residual_dim: 36
    ...         mean_init: random
    ... ''')
    >>> model = load_hyperpyyaml((folder / "train.yaml").read_text())["model"]
    >>> model.prior.set_num_classes({"speaker": 2})  # the recipe does this from its encoders
    >>> normalize = InputNormalization(norm_type="global")
    >>> _ = normalize(torch.randn(100, 1, 40) * 3 + 1, torch.ones(100), epoch=0)
    >>> speakers = CategoricalEncoder(); speakers.update_from_iterable(["MABC0", "FXYZ0"])
    >>> features = {"sample_rate": 16000, "n_mels": 40, "win_length": 25, "hop_length": 10,
    ...             "context": 0, "input_dim": 40}
    >>> _ = FactorialFlow.export(folder / "inference", model, normalize, {"speaker": speakers}, features,
    ...                          FactorialFlow.model_yaml(folder / "train.yaml", model))
    >>> flow = FactorialFlow.from_hparams(source=folder / "inference")
    >>> wav = torch.randn(16000) * 0.1
    >>> codes = flow.encode(wav)
    >>> codes["speaker"].shape, codes["residual"].shape
    (torch.Size([101, 4]), torch.Size([101, 36]))
    >>> feats = flow.features(wav)
    >>> torch.allclose(flow.decode(codes["z"]), feats, atol=1e-3)
    True
    >>> torch.allclose(flow.manipulate(feats, "speaker", "MABC0", source="MABC0"), feats, atol=1e-3)
    True
    """

    MODULES_NEEDED = ["model", "normalize"]
    HPARAMS_NEEDED = ["compute_features", "sample_rate", "context", "input_dim", "encoders"]

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", **kwargs):
        """Loads the interface from a local folder written by :meth:`export`.

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

    @staticmethod
    def model_yaml(hparams_file, model):
        """The yaml text that rebuilds ``model``: the ``model`` entry of a training run's saved
        ``hyperparams.yaml`` (with everything it references), plus the class counts the
        recipe gives the prior at run time."""
        root = yaml.compose(Path(hparams_file).read_text())
        model_node = _child(root, "model") if isinstance(root, yaml.MappingNode) else None
        if model_node is None:
            raise ValueError(f"{hparams_file} has no 'model' entry")
        prior = getattr(unwrap(model), "prior", None)
        if prior is not None:
            _write_class_counts(model_node, prior.num_classes)
        return yaml.serialize(yaml.MappingNode(_SPEC + "map", [(yaml.ScalarNode(_SPEC + "str", "model"), model_node)]))

    @staticmethod
    def export(folder, model, normalize, encoders, features, model_yaml):
        """Writes an inference folder (atomically: a half-written folder never replaces a good one).

        Arguments
        ---------
        folder : str or Path
            Destination (replaced if it exists).
        model : DiscriminativeFlow or VAE
            The trained model.
        normalize : InputNormalization
            Its global feature normalisation.
        encoders : dict
            Label name -> ``CategoricalEncoder``.
        features : dict
            ``sample_rate``, ``n_mels``, ``win_length``, ``hop_length``, ``context``, ``input_dim``.
        model_yaml : str
            From :meth:`model_yaml`.
        """
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            torch.save({k: v.cpu() for k, v in unwrap(model).state_dict().items()}, staging / "model.ckpt")
            normalize._save(staging / "normalize.ckpt")
            for name, encoder in encoders.items():
                encoder.save(str(staging / f"{name}_encoder.txt"))
            (staging / "hyperparams.yaml").write_text(_inference_yaml(features, model_yaml, sorted(encoders)))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        return folder

    # ------------------------------------------------------------------ inputs
    @property
    def model(self):
        return self.mods.model

    @property
    def factors(self):
        """Names of the factors with their own subspace (empty for NF and the VAE)."""
        prior = getattr(self.model, "prior", None)
        return list(prior.factor_names) if prior is not None else []

    def labels(self, factor):
        """The class names of a label set, in index order."""
        encoder = self._encoder(factor)
        return [encoder.ind2lab[i] for i in range(len(encoder))]

    def read_wav(self, path):
        """A mono waveform at the model's sample rate; anything else is an error naming the file."""
        check_audio(path, self.hparams.sample_rate, error=InferenceInputError)
        return read_audio(str(path))

    @torch.no_grad()
    def features(self, inputs):
        """Raw log-Mel features ``(frames, input_dim)`` of a path or waveform, as the recipe computes them.

        A feature tensor is returned unchanged (after a shape check).
        """
        if isinstance(inputs, (str, Path)):
            inputs = self.read_wav(inputs)
        inputs = torch.as_tensor(inputs, dtype=torch.float32)
        if inputs.dim() == 1:
            if len(inputs) < self.hparams.compute_features.compute_STFT.win_length:
                raise InferenceInputError(f"a waveform of {len(inputs)} samples is shorter than one analysis window")
            feats = self.hparams.compute_features(inputs[None].to(self.device))[0]
            return _splice(feats, self.hparams.context)
        if inputs.shape[-1] != self.hparams.input_dim:
            raise InferenceInputError(
                f"features of shape {tuple(inputs.shape)}: the last dimension must be {self.hparams.input_dim} "
                "(pass a 1-D tensor for a waveform)")
        if not torch.isfinite(inputs).all():
            raise InferenceInputError("the features contain NaN or Inf")
        return inputs.to(self.device)

    def _normalize(self, feats):
        normalize = self.mods.normalize
        return (feats - normalize.glob_mean.to(feats.device).reshape(-1)) / normalize.glob_std.to(feats.device).reshape(-1)

    def _denormalize(self, feats):
        normalize = self.mods.normalize
        return feats * normalize.glob_std.to(feats.device).reshape(-1) + normalize.glob_mean.to(feats.device).reshape(-1)

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
        z = self.model.encode(self._normalize(self.features(inputs)))[0]
        codes = {"z": z}
        prior = getattr(self.model, "prior", None)
        if prior is not None:
            for name in prior.slices:
                codes[name] = prior.subspace(z, name)
        return codes

    @torch.no_grad()
    def decode(self, z):
        """Raw features of latent codes (the ``"z"`` of :meth:`encode`, or that dict)."""
        if isinstance(z, dict):
            z = z["z"]
        return self._denormalize(self.model.decode(z.to(self.device)))

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
        if not hasattr(self.model, "log_prob"):
            raise TypeError(f"{type(self.model).__name__} has no exact likelihood (the VAE gives an ELBO)")
        feats = self.features(inputs)
        known = {}
        for name, value in (labels or {}).items():
            known[name] = self._class_tensor(name, value, feats.shape[:-1])
        log_p = self.model.log_prob(self._normalize(feats), known)
        return log_p - self.mods.normalize.glob_std.reshape(-1).log().sum()

    @torch.no_grad()
    def class_posterior(self, inputs, factor):
        """``p(class | frame)`` of ``factor`` under the prior, ``(..., frames, num_classes)``."""
        z_f = self.encode(inputs)[self._check_factor(factor)]
        return torch.softmax(-0.5 * squared_distances(z_f, self.model.prior.means(factor)), dim=-1)

    @torch.no_grad()
    def factor_embedding(self, inputs, factor="speaker"):
        """An utterance-level vector of ``factor``: the mean of its latent codes over frames.

        For the speaker factor this is a speaker embedding (its dimension is
        the subspace size); it is also the enrolment mean used as a target.
        """
        return self.encode(inputs)[self._check_factor(factor)].mean(dim=-2)

    def enrol(self, inputs, factor="speaker"):
        """The target mean of a class unseen in training: the mean code over all frames of ``inputs``.

        ``inputs`` is one input or a list of them (e.g. several utterances of
        a new speaker); pass the result as ``target`` to :meth:`manipulate`.
        """
        if isinstance(inputs, (str, Path)) or torch.is_tensor(inputs):
            inputs = [inputs]
        codes = [self.encode(item)[self._check_factor(factor)] for item in inputs]
        return torch.cat([c.reshape(-1, c.shape[-1]) for c in codes]).mean(dim=0)

    @torch.no_grad()
    def manipulate(self, inputs, factor, target, source=None):
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

        Returns
        -------
        torch.Tensor
            Manipulated raw features, the shape of :meth:`features`.
        """
        codes = self.encode(inputs)
        z, z_f = codes["z"], codes[self._check_factor(factor)]
        means = self.model.prior.means(factor)
        target_mean = self._mean(factor, target, means)
        if source is None:
            distance = squared_distances(z_f, means)
            if factor not in FRAME_LEVEL_LABELS:  # one class for the utterance: sum over its frames
                distance = distance.sum(dim=-2, keepdim=True).expand_as(distance)
            source_mean = means[distance.argmin(dim=-1)]
        elif torch.is_tensor(source) and not source.dtype.is_floating_point and source.dim() > 0:
            source_mean = means[self._class_tensor(factor, source, z.shape[:-1])]
        else:
            source_mean = self._mean(factor, source, means)
        shift = torch.zeros_like(z)
        shift[..., self.model.prior.slices[factor]] = target_mean - source_mean
        return self.decode(z + shift)

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

    def class_index(self, factor, label):
        """The index of class ``label`` (name or index) of ``factor``; unknown labels are an error."""
        encoder = self._encoder(factor)
        if isinstance(label, int) and not isinstance(label, bool):
            if not 0 <= label < len(encoder):
                raise ValueError(f"{factor} index {label} is out of range [0, {len(encoder)})")
            return label
        if label not in encoder.lab2ind:
            known = self.labels(factor)
            shown = ", ".join(map(str, known[:10])) + (", ..." if len(known) > 10 else "")
            raise ValueError(f"unknown {factor} {label!r}: the model knows {len(known)} ({shown}); "
                             "for a new speaker give enrolment audio instead")
        return encoder.lab2ind[label]

    def _class_tensor(self, factor, value, shape):
        if torch.is_tensor(value):
            value = value.to(self.device).long()
            if value.numel() and (value.min() < 0 or value.max() >= len(self._encoder(factor))):
                raise ValueError(f"{factor} indices must lie in [0, {len(self._encoder(factor))})")
            return value.expand(shape)
        return torch.full(shape, self.class_index(factor, value), dtype=torch.long, device=self.device)

    def _mean(self, factor, value, means):
        if torch.is_tensor(value) and value.dtype.is_floating_point:
            if value.shape[-1] != means.shape[-1]:
                raise ValueError(f"a {factor} mean vector needs {means.shape[-1]} dimensions, got {value.shape[-1]}")
            return value.to(means.device)
        return means[self.class_index(factor, value)]


def load_state_strict(module, path):
    """Loads a state dict into ``module``; any missing or unexpected key is an error naming the file."""
    try:
        module.load_state_dict(torch.load(path, map_location="cpu"), strict=True)
    except RuntimeError as error:
        raise RuntimeError(f"{path} does not match the model its hyperparams.yaml builds: {error}") from None


def _splice(feats, context):
    """``(frames, n)`` -> ``(frames, n * (2 context + 1))``, edge frames repeated (as :class:`FrameSet`)."""
    if not context:
        return feats
    index = (torch.arange(len(feats))[:, None] + torch.arange(-context, context + 1)).clamp(0, len(feats) - 1)
    return feats[index.to(feats.device)].flatten(1)


def _child(mapping, key):
    for k, v in mapping.value:
        if k.value == key:
            return v
    return None


def _write_class_counts(model_node, counts):
    """Adds ``num_classes`` to every factor entry of the prior in a composed yaml node tree."""
    stack = [model_node]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            if node.tag.endswith("FactorialGaussianPrior"):
                factors = _child(node, "factors")
                for entry in factors.value if factors is not None else []:
                    name = _child(entry, "name").value
                    if name in counts and _child(entry, "num_classes") is None:
                        entry.value.append((yaml.ScalarNode(_SPEC + "str", "num_classes"),
                                            yaml.ScalarNode(_SPEC + "int", str(counts[name]))))
            stack.extend(v for _, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _inference_yaml(features, model_yaml, label_names):
    header = ["# Written by speechbrain_fdnf.inference.FactorialFlow.export; load with",
              "# FactorialFlow.from_hparams(source=<this folder>).", ""]
    header += [f"{key}: {features[key]}" for key in FEATURE_KEYS]
    header += ["pretrained_path: .", "",
               "compute_features: !new:speechbrain.lobes.features.Fbank",
               "    sample_rate: !ref <sample_rate>", "    n_mels: !ref <n_mels>",
               "    win_length: !ref <win_length>", "    hop_length: !ref <hop_length>", "",
               "normalize: !new:speechbrain.processing.features.InputNormalization",
               "    norm_type: global", ""]
    encoders = [f"{name}_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder" for name in label_names]
    tail = ["", "encoders:"] + [f"    {name}: !ref <{name}_encoder>" for name in label_names]
    tail += ["", "modules:", "    model: !ref <model>", "    normalize: !ref <normalize>", "",
             "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer",
             "    loadables:", "        model: !ref <model>", "        normalize: !ref <normalize>"]
    tail += [f"        {name}_encoder: !ref <{name}_encoder>" for name in label_names]
    tail += ["    custom_hooks:", "        model: !name:speechbrain_fdnf.inference.load_state_strict", "    paths:", "        model: !ref <pretrained_path>/model.ckpt",
             "        normalize: !ref <pretrained_path>/normalize.ckpt"]
    tail += [f"        {name}_encoder: !ref <pretrained_path>/{name}_encoder.txt" for name in label_names]
    return "\n".join(header + encoders + [model_yaml.rstrip()] + tail) + "\n"


__all__ = ["FactorialFlow", "InferenceInputError", "load_state_strict"]
