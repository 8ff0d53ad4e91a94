"""An independent judge of who is speaking: a speaker encoder trained on real speech.

The project's own probes are frame classifiers trained on the corpus they judge. A
speaker encoder trained elsewhere on thousands of real speakers (Resemblyzer's
GE2E model, its weights inside its wheel: nothing is downloaded) judges the same
audio without having seen it, which is what a listener, or a speaker verification
system, would do. It needs the ``judge`` extra (``pip install speechbrain-fdnf[judge]``).

Authors
 * speechbrain-fdnf developers
"""

import numpy as np
import soundfile
import torch
from sklearn.metrics import roc_curve

from speechbrain_fdnf.data.audio import check_audio

def equal_error_rate(scores, same):
    """The equal error rate of trial ``scores`` (higher: more alike), ``same`` marking target trials.

    Example
    -------
    >>> equal_error_rate([0.9, 0.8, 0.3, 0.2], [True, True, False, False])
    0.0
    >>> equal_error_rate([0.9, 0.2, 0.8, 0.3], [True, True, False, False])
    0.5
    """
    same = np.asarray(same, dtype=bool)
    if same.all() or not same.any():
        raise ValueError("an equal error rate needs both target and non-target trials")
    false_accept, true_accept, _ = roc_curve(same, np.asarray(scores, dtype=float))
    false_reject = 1 - true_accept
    # where the two error curves cross, interpolated between the two thresholds around it
    k = int(np.argmax(false_reject <= false_accept))
    if k == 0:
        return float(false_accept[0])
    a0, a1, r0, r1 = false_accept[k - 1], false_accept[k], false_reject[k - 1], false_reject[k]
    t = (r0 - a0) / ((a1 - a0) - (r1 - r0))
    return float(a0 + t * (a1 - a0))


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
                f"the independent speaker judge needs Resemblyzer ({err}); pip install 'speechbrain-fdnf[judge]'"
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
