"""The SpeechBrain ``Brain`` that trains all five models of the paper.

NF, DNF and f-DNF differ only in their prior (yaml); the VAE shares the same
interface (``objective``), so one Brain trains them all.

Authors
 * speechbrain-fdnf developers
"""

import logging

import speechbrain as sb
import torch
from speechbrain.utils.distributed import ddp_broadcast, run_on_main

from speechbrain_fdnf.engine import FeatureFlow, unwrap
from speechbrain_fdnf.export import read_nll, record_nll  # noqa: F401  (read_nll: named here before 0.5)
from speechbrain_fdnf.lobes.normalization import ActNorm
from speechbrain_fdnf.stopping import annealed_learning_rate, stopping_reason

logger = logging.getLogger(__name__)


class FlowBrain(sb.Brain):
    """Trains a generative model of feature frames by maximum likelihood (or ELBO).

    Expected ``modules``: ``model`` (a ``DiscriminativeFlow`` or ``VAE``) and
    ``normalize`` (SpeechBrain's ``InputNormalization`` with global stats).
    Expected ``hparams``: ``epoch_counter`` (an
    :class:`~speechbrain_fdnf.stopping.EarlyStopper` stops on a plateau of
    the valid loss, :func:`~speechbrain_fdnf.stopping.stopping_reason` says
    why), ``lr_annealing`` (any SpeechBrain scheduler,
    :func:`~speechbrain_fdnf.stopping.annealed_learning_rate`),
    ``train_logger``, and optionally
    ``init_batch_size`` (frames per pass of the normalisation statistics, and of ActNorm's initialisation)
    and ``nll_file`` (where :meth:`evaluate_split` records each split's NLL
    as JSON, for the evaluation to read).

    Before the first epoch of a fresh run, :meth:`on_fit_start` initialises,
    from the training frames and in this order, the global normalisation
    statistics, the ActNorm layers, and (``mean_init: data``) the class means;
    all three live in checkpointed state, so a resumed run skips this.

    Every epoch's checkpoint replaces the last one, except that the one of the
    lowest valid loss is kept too: a killed run resumes from the latest, and
    :meth:`evaluate` (hence :meth:`evaluate_split` and the export after
    training) recovers the best. ``epoch_end_callbacks`` (callables taking
    the epoch) run after each epoch's checkpoint, e.g. to export snapshots.

    Batches are :class:`speechbrain_fdnf.data.frames.FrameBatch` objects. A
    label of ``-1`` marks an unknown class (e.g. TIMIT test speakers); the
    prior marginalises that factor for that frame.
    """

    def fit(self, epoch_counter, train_set, valid_set=None, **kwargs):
        """Like ``Brain.fit``; keeps ``train_set`` for the data-dependent initialisation and logs why it stopped."""
        self._init_frames = train_set
        super().fit(epoch_counter, train_set, valid_set, **kwargs)
        self.stopping_reason = stopping_reason(epoch_counter)  # patience exhausted, or the cap reached
        logger.info("Training stopped: %s", self.stopping_reason)
        # on every process: SpeechBrain's logger writes on the main one and broadcasts (a collective under DDP)
        self.hparams.train_logger.log_stats(stats_meta={"stopped": self.stopping_reason})

    def on_fit_start(self):
        """Recovers the latest checkpoint, or initialises from data on a fresh run."""
        super().on_fit_start()
        frames = getattr(self, "_init_frames", None)
        if frames is not None and not isinstance(frames, torch.utils.data.DataLoader):
            self.initialize_from_data(frames)

    @property
    def engine(self):
        """The :class:`FeatureFlow` of the model being trained (normalisation, encode, decode)."""
        return FeatureFlow(self.modules.model, self.modules.normalize)

    @torch.no_grad()
    def initialize_from_data(self, frames):
        """Data-dependent initialisation (skipped for what a checkpoint already holds)."""
        chunk = getattr(self.hparams, "init_batch_size", 65536)
        normalize, model, engine = self.modules.normalize, unwrap(self.modules.model), self.engine
        if normalize.count == 0:
            normalize.train()
            for batch in frames.batches(chunk):
                normalize(batch.feats.to(self.device)[:, None, :], epoch=0)
            logger.info("Global normalisation statistics from %d training frames", len(frames))
        normalize.eval()
        if any(not bool(m.initialized) for m in model.modules() if isinstance(m, ActNorm)):
            generator = torch.Generator().manual_seed(0)
            first = frames.batch(torch.randperm(len(frames), generator=generator)[:chunk])
            model.train()
            engine.encode(first.feats.to(self.device))  # ActNorms pick up this batch
            logger.info("ActNorm layers initialised from %d training frames", len(first))
        prior = engine.prior
        if prior is not None and not bool(prior.means_initialized):
            model.eval()

            def codes():
                for batch in frames.batches(engine.encode_batch_size):
                    batch = batch.to(self.device)
                    yield engine.encode(batch.feats), self.factor_labels(batch, prior)

            empty = prior.init_means_from_data(codes())
            for name, classes in empty.items():
                if classes:
                    logger.warning("Factor %s: classes %s have no training frames; their means stay at zero", name, classes)
            logger.info("Class means initialised from the latent codes of the training frames")

    @staticmethod
    def factor_labels(batch, prior):
        """The batch labels of the prior's factors (``-1``: unknown, marginalised by the prior).

        A factor unknown for the whole batch is left out, which skips its
        labelled term altogether.
        """
        labels = {}
        for name in prior.factor_names:
            if name not in batch.labels:
                raise ValueError(f"the batch has no {name!r} labels, which the prior's factor needs")
            values = batch.labels[name]
            if not (values < 0).all():
                labels[name] = values
        return labels

    def use_pairs(self, frames, pairs, shared, weight, kind="parallel"):
        """Adds a paired-frame likelihood to training (beyond the paper); call once per kind of pair.

        Each training step also draws ``pair_batch_size`` of ``pairs`` and
        adds ``weight`` times their negative log-likelihood under a prior whose
        ``shared`` subspaces are correlated with ``pair_correlation``
        (:meth:`~speechbrain_fdnf.lobes.priors.FactorialGaussianPrior.pair_log_prob`).
        The validation loss stays the frames' NLL, comparable across models.

        Arguments
        ---------
        frames : FrameSet
            The training frames the pairs index.
        pairs : torch.LongTensor
            ``(pairs, 2)`` positions in ``frames``, e.g. from
            :func:`~speechbrain_fdnf.data.frames.parallel_frame_pairs` (two
            speakers, one phone) or
            :func:`~speechbrain_fdnf.data.frames.utterance_frame_pairs` (one
            speaker, two phones).
        shared : list of str
            Subspaces the two frames share; names the prior lacks (e.g. a
            residual of size 0) are skipped.
        weight : float
            Weight of the pairs' NLL next to the frames'.
        kind : str
            Name for the log.
        """
        prior = self.engine.prior
        if prior is None:
            raise ValueError("paired frames need a flow with a prior (not the VAE)")
        if len(pairs) == 0:
            raise ValueError(f"no {kind} frame pairs in the training set")
        slices = prior.slices
        shared = [name for name in shared if name in slices and slices[name].stop > slices[name].start]
        if not shared:
            raise ValueError(f"{kind} pairs share none of the prior's subspaces {list(prior.slices)}")
        self.pair_sources = getattr(self, "pair_sources", []) + [dict(frames=frames, pairs=pairs, shared=shared,
                                                                       weight=float(weight))]
        logger.info("Training with %d %s frame pairs (shared subspaces %s, correlation %s, weight %s)",
                    len(pairs), kind, shared, self.hparams.pair_correlation, weight)

    def _pair_batch(self, source):
        chosen = source["pairs"][torch.randint(len(source["pairs"]), (self.hparams.pair_batch_size,))]
        engine, frames = self.engine, source["frames"]
        a = frames.batch(chosen[:, 0]).to(self.device)
        b = frames.batch(chosen[:, 1]).to(self.device)
        return dict(x_a=engine.normalized(a.feats), x_b=engine.normalized(b.feats),
                    labels_a=self.factor_labels(a, engine.prior), labels_b=self.factor_labels(b, engine.prior),
                    shared=source["shared"], correlation=self.hparams.pair_correlation)

    def compute_forward(self, batch, stage):
        """Normalises the frames; returns them with the labels the model needs (and batches of pairs)."""
        batch = batch.to(self.device)
        engine = self.engine
        labels = self.factor_labels(batch, engine.prior) if engine.prior is not None else {}
        sources = getattr(self, "pair_sources", []) if stage == sb.Stage.TRAIN else []
        return engine.normalized(batch.feats), labels, [self._pair_batch(source) for source in sources]

    def compute_objectives(self, predictions, batch, stage):
        """Mean per-frame objective in nats per dimension (NLL, or negative ELBO for the VAE),
        plus each kind of pair's weight times its NLL when training with pairs."""
        feats, labels, pairs = predictions
        if not pairs:
            return self.modules.model(feats, labels).mean()  # forward() is the objective (DDP-safe)
        frames, pair_losses = self.modules.model(feats, labels, pairs=pairs)
        weights = [source["weight"] for source in self.pair_sources]
        return frames.mean() + sum(weight * loss.mean() for weight, loss in zip(weights, pair_losses))

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the losses, anneals the learning rate and saves a checkpoint after validation."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
        elif stage == sb.Stage.VALID:
            # every process decides on the main process's loss: the schedule, the stopper and the best
            # checkpoint must agree across DDP processes (a process that stopped alone would hang the others)
            stage_loss = ddp_broadcast(stage_loss)
            old_lr, new_lr = annealed_learning_rate(self.hparams.lr_annealing, self.optimizer, epoch, stage_loss)
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            counter = self.hparams.epoch_counter
            if hasattr(counter, "update_metric"):  # early stopping on the valid NLL
                counter.update_metric(stage_loss)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr},
                train_stats={"loss": self.train_loss},
                valid_stats={"loss": stage_loss},
            )
            # the best epoch (what the run evaluates and exports) and the latest (what a killed run resumes)
            self.checkpointer.save_and_keep_only(meta={"loss": stage_loss}, min_keys=["loss"], num_to_keep=1)
            for callback in getattr(self, "epoch_end_callbacks", []):
                callback(epoch)
        # TEST: evaluate_split logs and records the loss under the split's name.


    def evaluate_split(self, name, frames, **loader_kwargs):
        """``evaluate`` on one named frame set; logs it and records it in ``nll_file``.

        For flows the value is the negative log-likelihood in nats per
        dimension, conditioned on the labels the split has (TIMIT test
        speakers are unknown, so the speaker factor is marginalised there);
        for the VAE it is the negative ELBO, an upper bound on the NLL. The
        checkpoint of the lowest valid loss is recovered first.

        Returns
        -------
        float
            The mean loss of the split.
        """
        loader_kwargs.setdefault("collate_fn", frames.collate)
        loss = self.evaluate(frames, min_key="loss", test_loader_kwargs=loader_kwargs)  # the best epoch's model
        epoch = self.hparams.epoch_counter.current
        self.hparams.train_logger.log_stats(
            stats_meta={"Epoch loaded": epoch, "split": name},
            test_stats={"nll_nats_per_dim": loss},
        )
        nll_file = getattr(self.hparams, "nll_file", None)
        if nll_file is not None:
            run_on_main(record_nll, args=[nll_file, name, loss, epoch])
        return loss

