"""Judges of converted speech that the project neither trains nor tunes on conversions.

The project's own probes are frame classifiers trained on the corpus they judge. Here:

* who is speaking: a speaker encoder trained elsewhere on thousands of real speakers
  (:class:`SpeakerEncoderJudge`, Resemblyzer's GE2E model, its weights inside its wheel:
  nothing is downloaded), which hears the audio as a speaker verification system would;
* what is said: phone error rates, by CMU's en-us acoustic model in free phone decoding
  (:class:`PocketsphinxPhoneJudge`, model and phone language model inside pocketsphinx's wheel)
  and by the project's CTC phone recognizer trained on real corpus audio
  (:class:`CTCPhoneJudge`, the ``fbank`` run of ``recipes/TIMIT/phone_recognition.py``);
* how good it sounds: Microsoft's DNSMOS (:class:`QualityJudge`), a non-intrusive quality predictor trained
  on human ratings (ITU-T P.808 listening tests) of real and processed speech, its ONNX models inside the
  ``speechmos`` wheel.

Resemblyzer, pocketsphinx and speechmos come with the ``judge`` extra (``pip install speechbrain-fdnf[judge]``).

Authors
 * speechbrain-fdnf developers
"""

from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio
from sklearn.metrics import roc_curve

from speechbrain_fdnf.data.audio import as_written, check_audio
from speechbrain_fdnf.data.phones import ARPABET_TO_FOLDED, SILENCE

JUDGE_EXTRA = "pip install 'speechbrain-fdnf[judge]'"
#: CMU phones (pocketsphinx's en-us model) that the 39 folded TIMIT classes merge into another.
CMU_TO_FOLDED = ARPABET_TO_FOLDED
#: pocketsphinx's non-phone units (silence, noise, breath) and sentence markers, dropped from hypotheses.
CMU_FILLERS = {"SIL", "+NSN+", "+SPN+", "+BREATH+", "(NULL)", "<s>", "</s>", "<sil>"}


def equal_error_rate(scores, same):
    """The equal error rate of trial ``scores`` (higher: more alike), ``same`` marking target trials.

    Example
    -------
    >>> equal_error_rate([0.9, 0.8, 0.3, 0.2], [True, True, False, False])
    0.0
    >>> equal_error_rate([0.9, 0.2, 0.8, 0.3], [True, True, False, False])
    0.5
    """
    return eer_threshold(scores, same)[0]


def eer_threshold(scores, same):
    """``(equal error rate, threshold)``: the EER of :func:`equal_error_rate` and the score threshold where it is
    reached (a trial at or above it is accepted), interpolated as the rate is.

    Example
    -------
    >>> eer_threshold([0.9, 0.8, 0.3, 0.2], [True, True, False, False])
    (0.0, 0.8)
    """
    same = np.asarray(same, dtype=bool)
    if same.all() or not same.any():
        raise ValueError("an equal error rate needs both target and non-target trials")
    false_accept, true_accept, thresholds = roc_curve(same, np.asarray(scores, dtype=float))
    false_reject = 1 - true_accept
    # where the two error curves cross, interpolated between the two thresholds around it
    k = int(np.argmax(false_reject <= false_accept))
    if k == 0:
        return float(false_accept[0]), float(thresholds[0])
    a0, a1, r0, r1 = false_accept[k - 1], false_accept[k], false_reject[k - 1], false_reject[k]
    t = (r0 - a0) / ((a1 - a0) - (r1 - r0))
    high = thresholds[k - 1] if np.isfinite(thresholds[k - 1]) else thresholds[k]
    return float(a0 + t * (a1 - a0)), float(high + t * (thresholds[k] - high))


def pairwise_eer(embeddings, speakers):
    """EER over every pair of utterances: cosine score, target when both have one speaker."""
    embeddings = torch.nn.functional.normalize(torch.as_tensor(np.asarray(embeddings), dtype=torch.float32), dim=-1)
    scores = embeddings @ embeddings.T
    labels = np.asarray(speakers)
    upper = np.triu_indices(len(labels), k=1)
    return equal_error_rate(scores.numpy()[upper], (labels[:, None] == labels[None, :])[upper])


class SpeakerEncoderJudge:
    """Resemblyzer's speaker encoder: one embedding per utterance.

    Arguments
    ---------
    device : str
        ``cpu`` or ``cuda``.
    """

    def __init__(self, device="cpu"):
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as err:
            raise ImportError(
                f"the independent speaker judge needs Resemblyzer ({err}); {JUDGE_EXTRA}"
            ) from err
        self.encoder = VoiceEncoder(device, verbose=False)

    def embed_wav(self, wav, sample_rate):
        """The embedding of one waveform (float array, any rate); silence is trimmed by the judge's VAD."""
        from resemblyzer import preprocess_wav

        return self.encoder.embed_utterance(preprocess_wav(np.asarray(wav, dtype=np.float32), sample_rate))

    def embed_files(self, paths):
        """One embedding per audio file, ``(len(paths), 256)``."""
        rows = []
        for path in paths:
            check_audio(path, mono=False)
            wav, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
            rows.append(self.embed_wav(wav.mean(axis=1), rate))
        return np.stack(rows)


def spoken_phones(phones):
    """The phones a recognizer is scored on: silence dropped, consecutive repeats merged.

    Example
    -------
    >>> spoken_phones(["sil", "dh", "ah", "ah", "sil", "k"])
    ['dh', 'ah', 'k']
    """
    spoken = [phone for phone in phones if phone != SILENCE]
    return [phone for i, phone in enumerate(spoken) if i == 0 or phone != spoken[i - 1]]


class PhoneErrorCounter:
    """Phone error rate over utterances (edits / reference phones, SpeechBrain's edit distance).

    Example
    -------
    >>> counter = PhoneErrorCounter()
    >>> counter.add(["dh", "ah"], ["dh", "ah"]); counter.add(["k", "ae", "t"], ["k", "t"])
    >>> round(counter.rate(), 3)
    0.2
    """

    def __init__(self):
        self.edits = self.reference = 0

    def add(self, reference, hypothesis):
        from speechbrain.utils.edit_distance import wer_details_for_batch

        details = wer_details_for_batch(["utterance"], [list(reference)], [list(hypothesis)])[0]
        self.edits += details["num_edits"]
        self.reference += details["num_ref_tokens"]

    def rate(self):
        """Errors per reference phone (``nan`` before any phone)."""
        return self.edits / self.reference if self.reference else float("nan")


class PocketsphinxPhoneJudge:
    """Free phone decoding by pocketsphinx's CMU en-us model (a phone language model, no words), folded to
    the 39 TIMIT classes. The decoder settings are the CMUSphinx phoneme-recognition tutorial's
    (language weight 2); they are never tuned on this project's audio.

    Arguments
    ---------
    language_weight : float
        The phone language model's weight.
    """

    def __init__(self, language_weight=2.0):
        try:
            from pocketsphinx import Decoder, get_model_path
        except ImportError as err:
            raise ImportError(f"the independent phone judge needs pocketsphinx ({err}); {JUDGE_EXTRA}") from err
        models = Path(get_model_path()) / "en-us"
        self.sample_rate = 16000
        self.decoder = Decoder(hmm=str(models / "en-us"), allphone=str(models / "en-us-phone.lm.bin"),
                               lw=language_weight, loglevel="FATAL")

    def phones(self, wav, sample_rate):
        """The decoded folded phones of one waveform (float, any rate; resampled to 16 kHz)."""
        wav = torch.as_tensor(np.asarray(wav), dtype=torch.float32).flatten()
        if sample_rate != self.sample_rate:
            wav = torchaudio.functional.resample(wav, sample_rate, self.sample_rate)
        pcm = (wav.clamp(-1.0, 1.0) * 32767).to(torch.int16).numpy()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.tobytes(), full_utt=True)
        self.decoder.end_utt()
        decoded = [CMU_TO_FOLDED.get(unit.word, unit.word.lower()) for unit in self.decoder.seg()
                   if unit.word not in CMU_FILLERS]
        return spoken_phones(decoded)


class CTCPhoneJudge:
    """The project's CTC phone recognizer (``recipes/TIMIT/phone_recognition.py``, its ``fbank`` run: trained
    on real corpus audio of the training speakers, never on conversions), on the log-Mel frames of audio.

    Arguments
    ---------
    run_folder : str or Path
        The recipe's ``<output_folder>`` (with ``label_encoder.txt`` and ``fbank/save``).
    hparams_file : str or Path
        The recipe's yaml (its modules are rebuilt from it, then the best checkpoint is loaded).
    features : callable
        Waveform at the recognizer's rate -> ``(frames, 40)`` log-Mel frames as the recipe computed them
        (e.g. a ``SpeechFactorizer``'s ``features`` restricted to its centre bands).
    """

    def __init__(self, run_folder, hparams_file, features, device="cpu"):
        from hyperpyyaml import load_hyperpyyaml
        from speechbrain.dataio.encoder import CTCTextEncoder
        from speechbrain.utils.checkpoints import Checkpointer

        run_folder = Path(run_folder)
        save = run_folder / "fbank" / "save"
        if not (run_folder / "label_encoder.txt").is_file() or not any(save.glob("CKPT*")):
            raise FileNotFoundError(
                f"no trained phone recognizer in {run_folder} (needs label_encoder.txt and fbank/save/CKPT*): run "
                f"python recipes/TIMIT/phone_recognition.py {hparams_file} --features=[fbank]")
        with open(hparams_file, encoding="utf-8") as stream:
            hparams = load_hyperpyyaml(stream, overrides={"output_root": str(run_folder.parent)})
        self.modules = torch.nn.ModuleDict({
            "normalize": hparams["normalize"](),
            "encoder": hparams["encoder"](input_shape=[None, None, 40]),
            "output": hparams["output"](input_size=hparams["hidden_size"]),
        })
        Checkpointer(save, recoverables=dict(self.modules)).recover_if_possible(min_key="PER")
        self.modules.to(device).eval()
        self.labels = CTCTextEncoder()
        self.labels.load(run_folder / "label_encoder.txt")
        self.labels.ignore_len()  # the checkpoint's output layer fixes the label count
        self.blank_index, self.features, self.device = hparams["blank_index"], features, device

    @torch.no_grad()
    def phones(self, wav):
        """The greedy CTC phone sequence of one waveform (at the model's rate)."""
        from speechbrain.decoders.ctc import ctc_greedy_decode

        feats = self.features(torch.as_tensor(wav, dtype=torch.float32)).to(self.device)[None]
        lens = torch.ones(1, device=self.device)
        feats = self.modules["normalize"](feats, lens)
        log_probs = torch.log_softmax(self.modules["output"](self.modules["encoder"](feats)), dim=-1)
        decoded = ctc_greedy_decode(log_probs, lens, blank_id=self.blank_index)[0]
        return spoken_phones(self.labels.decode_ndim(decoded))


class QualityJudge:
    """DNSMOS (Reddy et al., ICASSP 2022): the overall, signal and background quality a listener would rate a
    waveform on P.835's 1-5 scale, predicted without a reference by models trained on human ratings of real
    speech. The ONNX models ship inside the ``speechmos`` wheel (nothing is downloaded).

    Example
    -------
    >>> scores = QualityJudge().scores(0.1 * torch.randn(16000), 16000)  # white noise: a poor background
    >>> sorted(scores), scores["bak"] < 2.5
    (['bak', 'ovrl', 'sig'], True)
    """

    sample_rate = 16000

    def __init__(self):
        try:
            from speechmos import dnsmos
        except ImportError as err:
            raise ImportError(f"the quality judge needs speechmos, onnxruntime and librosa ({err}); {JUDGE_EXTRA}") from err
        self.dnsmos = dnsmos
        models = Path(dnsmos.__file__).parent / "dnsmos_models"
        self.model = dnsmos.DNSMOS(str(models / "sig_bak_ovr.onnx"), str(models / "model_v8.onnx"))

    def segments(self, wav):
        """The 9.01 s windows, 1 s apart, that DNSMOS scores (``speechmos.dnsmos``'s procedure: a short
        waveform is repeated until it is that long)."""
        length = int(self.dnsmos.INPUT_LENGTH * self.sample_rate)
        while len(wav) < length:
            wav = np.append(wav, wav)
        hops = int(np.floor(len(wav) / self.sample_rate) - self.dnsmos.INPUT_LENGTH) + 1
        # the library's own float arithmetic for each window's end: where it rounds a sample short, it skips
        # the window, and so does this (the scores are speechmos's to the last digit)
        windows = [wav[index * self.sample_rate:int((index + self.dnsmos.INPUT_LENGTH) * self.sample_rate)]
                   for index in range(hops)]
        return [window for window in windows if len(window) == length]

    def scores(self, wav, sample_rate):
        """``{"ovrl", "sig", "bak"}`` of one waveform (float, any rate; resampled to 16 kHz, peak-limited to 1):
        ``speechmos.dnsmos.run``'s numbers, without its P.808 model, whose score is not read here and which
        took nearly half the time."""
        wav = torch.as_tensor(np.asarray(wav), dtype=torch.float32).flatten()
        if sample_rate != self.sample_rate:
            wav = torchaudio.functional.resample(wav, sample_rate, self.sample_rate)
        wav = as_written(wav).double().numpy()
        calibrated = []
        for segment in self.segments(wav):
            raw = self.model.onnx_sess.run(None, {"input_1": segment.astype("float32")[np.newaxis, :]})[0][0]
            calibrated.append(self.model.get_polyfit_val(*raw, False))  # sig, bak, ovrl on P.835's scale
        sig, bak, ovrl = np.mean(calibrated, axis=0)
        return {"ovrl": float(ovrl), "sig": float(sig), "bak": float(bak)}

