"""A contextual frame tagger: one class per frame from the whole utterance around it.

The flows classify a frame from that frame alone (its class posterior under the prior), so the gate of
the matching manipulations decodes the phone with a frame-rate bigram over those posteriors. A phone,
though, is heard in its context (transitions into and out of it, its neighbours, its duration): a
bidirectional recurrent network over the utterance's log-Mel frames, trained with per-frame
cross-entropy on the training frames' labels, reads it there. A convolutional block before it reads each
pattern of the spectrum wherever along the Mel axis a voice puts it, as a speech recognizer's front end does:
on voices unlike the training corpus's it names more frames (docs/RESULTS.md 6ze). Beyond the paper: the
paper never infers a frame's phone.

Authors
 * speechbrain-fdnf developers
"""

import torch
from speechbrain.lobes.models.CRDNN import CNN_Block
from speechbrain.nnet.linear import Linear
from speechbrain.nnet.RNN import LSTM
from speechbrain.processing.features import InputNormalization

from speechbrain_fdnf.decoding import decode_runs
from speechbrain_fdnf.lobes.recurrent import lstm_over_padding

#: How the tagger normalises its input: ``utterance`` (the default: each band's mean over the utterance's own frames
#: taken away first, then scaled by the training frames' standard deviation; a recording's level and channel, and
#: the part of a voice every phone shares, no longer move the input) or ``global`` (each band by the training
#: frames' mean and standard deviation: a recording 12 dB quieter than the training corpus's loses half its
#: phones; docs/RESULTS.md 6n, 6o).
NORMALIZATIONS = ("utterance", "global")


class FrameTagger(torch.nn.Module):
    """Per-frame class logits of whole utterances: feature normalisation, optionally a convolutional block over
    time and frequency, a bidirectional LSTM and a linear output layer.

    Arguments
    ---------
    input_size : int
        Features per frame (the model's log-Mel bands).
    num_classes : int
        Classes of the tagged label set (the phone encoder's).
    hidden_size : int
        LSTM units per direction.
    num_layers : int
        LSTM layers.
    dropout : float
        Dropout between LSTM layers.
    normalization : str
        One of :data:`NORMALIZATIONS` (``utterance`` by default).
    cnn_channels : int
        Channels of a convolutional front end before the LSTM (SpeechBrain's CRDNN ``CNN_Block``: two 3x3
        convolutions over time and frequency, layer norm, max-pooling of pairs of bands), as the phone
        recognizer has: a pattern is read wherever along the Mel axis a voice puts it (the recipe's default, 16);
        0 (this class's default, as every tagger saved before the option was): the LSTM reads the bands themselves.
    change_penalty : float
        Nats a change of class costs where :meth:`phones` reads the classes (0: each frame's most likely one).
    cnn_blocks : int
        How many such blocks, one after the other (each halves the bands again); 1 by default, as every tagger saved
        before the option has.

    Example
    -------
    >>> tagger = FrameTagger(input_size=4, num_classes=3, hidden_size=8, num_layers=1)
    >>> tagger(torch.randn(2, 5, 4)).shape
    torch.Size([2, 5, 3])
    >>> tagger.tag(torch.randn(7, 4)).shape  # one utterance, (frames, features) -> (frames,)
    torch.Size([7])
    >>> frames = torch.randn(7, 4)
    >>> torch.equal(tagger.tag(frames), tagger.tag(frames - 12.0))  # 12 dB quieter: the same phones
    True
    >>> FrameTagger(input_size=4, num_classes=3, hidden_size=8, num_layers=1, cnn_channels=2)(torch.randn(2, 5, 4)).shape
    torch.Size([2, 5, 3])
    >>> FrameTagger(input_size=8, num_classes=3, hidden_size=8, num_layers=1, cnn_channels=2, cnn_blocks=2).rnn_input
    4
    """

    def __init__(self, input_size, num_classes, hidden_size=128, num_layers=2, dropout=0.15, normalization="utterance",
                 cnn_channels=0, change_penalty=0.0, cnn_blocks=1):
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.config = dict(input_size=input_size, num_classes=num_classes, hidden_size=hidden_size,
                           num_layers=num_layers, dropout=dropout, normalization=normalization,
                           cnn_channels=cnn_channels, change_penalty=float(change_penalty), cnn_blocks=cnn_blocks)
        # SpeechBrain's per-sentence mean over each utterance's own frames (its length, not the padding)
        self.centre = InputNormalization(norm_type="sentence", std_norm=False) if normalization == "utterance" else None
        # statistics of the training frames, set once by fit_normalization (saved with the weights)
        self.register_buffer("mean", torch.zeros(input_size))
        self.register_buffer("std", torch.ones(input_size))
        if cnn_blocks < 1:
            raise ValueError(f"cnn_blocks must be at least 1, got {cnn_blocks}")
        self.cnn = None
        if cnn_channels:
            blocks = [CNN_Block(input_shape=(None, None, input_size // 2 ** block, 1 if block == 0 else cnn_channels),
                                channels=cnn_channels, dropout=dropout) for block in range(cnn_blocks)]
            # one block is the module itself, as every tagger saved before cnn_blocks holds it
            self.cnn = blocks[0] if cnn_blocks == 1 else torch.nn.Sequential(*blocks)
        self.rnn_input = (input_size // 2 ** cnn_blocks) * cnn_channels if cnn_channels else input_size
        self.rnn = LSTM(hidden_size, input_size=self.rnn_input, num_layers=num_layers, bidirectional=True,
                        dropout=dropout if num_layers > 1 else 0.0)
        self.output = Linear(n_neurons=num_classes, input_size=2 * hidden_size)

    def fit_normalization(self, utterances):
        """The global mean and standard deviation of the training frames: ``utterances``, a list of
        ``(frames, input_size)`` features (or one such tensor), each centred on its own mean first where the
        tagger normalises per utterance."""
        if torch.is_tensor(utterances):
            utterances = [utterances]
        if self.centre is not None:
            utterances = [feats - feats.mean(dim=0) for feats in utterances]
        feats = torch.cat(list(utterances))
        self.mean.copy_(feats.mean(dim=0))
        self.std.copy_(feats.std(dim=0).clamp_min(1e-5))

    def forward(self, feats, lengths=None):
        """``(batch, frames, input_size)`` features -> ``(batch, frames, num_classes)`` logits (``lengths``:
        relative lengths of padded utterances, SpeechBrain's convention)."""
        if self.centre is not None:
            feats = self.centre(feats, lengths)  # (no lengths: every frame its utterance's)
        front = self.front_end((feats - self.mean) / self.std, lengths)
        if lengths is not None and front.device.type == "cpu":  # as packed, in a third of the time there
            hidden = lstm_over_padding(self.rnn.rnn, front, torch.round(lengths * front.shape[1]).long())
        else:  # one utterance; or a GPU, where cuDNN steps a packed batch (the padded path is timed on CPUs)
            hidden, _ = self.rnn(front, lengths=lengths)
        return self.output(hidden)

    def front_end(self, feats, lengths=None):
        """The LSTM's input: ``feats`` as they are, or ``(batch, frames, bands / 2 * channels)`` from the
        convolutional block. Each utterance goes through the block at its own length, so that its convolutions
        pad it at its own edges (SpeechBrain's reflect padding) and never read the batch's padding: a padded
        utterance is tagged as it is alone."""
        if self.cnn is None:
            return feats
        if lengths is None:
            lengths = torch.ones(len(feats), device=feats.device)
        out = feats.new_zeros(*feats.shape[:2], self.rnn_input)
        for index, frames in enumerate(torch.round(lengths * feats.shape[1]).long().tolist()):
            own = feats[index, :frames]
            if frames == 1:  # reflect padding needs two frames: one frame is its own neighbour
                own = own.repeat(2, 1)
            out[index, :frames] = self.cnn(own[None, :, :, None]).flatten(start_dim=2)[0, :frames]
        return out

    @torch.no_grad()
    def log_posteriors(self, feats):
        """``(frames, input_size)`` frames of one utterance -> ``(frames, num_classes)`` log posteriors."""
        return torch.log_softmax(self(feats[None].to(self.mean.device)), dim=-1)[0]

    @property
    def change_penalty(self):
        """Nats a change of class costs when :meth:`phones` reads the classes off the posteriors (0: each frame's
        most likely class); saved with the tagger's architecture."""
        return self.config["change_penalty"]

    @change_penalty.setter
    def change_penalty(self, penalty):
        if penalty < 0:
            raise ValueError(f"change_penalty must be at least 0, got {penalty}")
        self.config["change_penalty"] = float(penalty)

    def phones(self, log_posteriors, utterance=None):
        """``(frames,)`` classes of ``(frames, num_classes)`` log posteriors (``utterance``: each frame's
        utterance, its frames consecutive; one utterance without it): each frame's most likely class, or with a
        :attr:`change_penalty` the most likely sequence of runs (:func:`~speechbrain_fdnf.decoding.decode_runs`), so that a
        flicker of a few frames into another class stands only on strong evidence.

        Example
        -------
        >>> tagger = FrameTagger(input_size=4, num_classes=2, hidden_size=8, num_layers=1)
        >>> flicker = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.9, 0.1], [0.9, 0.1]]).log()
        >>> tagger.phones(flicker).tolist()
        [0, 1, 0, 0]
        >>> tagger.change_penalty = 1.0
        >>> tagger.phones(flicker).tolist()
        [0, 0, 0, 0]
        """
        if not self.change_penalty:
            return log_posteriors.argmax(dim=-1)
        if utterance is None:
            utterance = torch.zeros(len(log_posteriors), dtype=torch.long, device=log_posteriors.device)
        return decode_runs(log_posteriors, utterance, self.change_penalty)

    def tag(self, feats):
        """The classes of the frames of one utterance, ``(frames,)`` (:meth:`phones`)."""
        return self.phones(self.log_posteriors(feats))
