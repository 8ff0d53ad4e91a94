"""The SpeechBrain ``Brain`` that trains all five models of the paper.

NF, DNF and f-DNF differ only in their prior (yaml); the VAE shares the same
interface (``objective``), so one Brain trains them all.

Authors
 * speechbrain-fdnf developers
"""

import logging

import speechbrain as sb
import torch

from speechbrain_fdnf.lobes.transforms import ActNorm

logger = logging.getLogger(__name__)


def unwrap(module):
    """The module inside a DDP/DataParallel wrapper (or the module itself)."""
    return getattr(module, "module", module)


class FlowBrain(sb.Brain):
    """Trains a generative model of feature frames by maximum likelihood (or ELBO).

    Expected ``modules``: ``model`` (a ``DiscriminativeFlow`` or ``VAE``) and
    ``normalize`` (SpeechBrain's ``InputNormalization`` with global stats).
    Expected ``hparams``: ``epoch_counter``, ``lr_annealing`` (called with the
    epoch, returns ``(old_lr, new_lr)``), ``train_logger``, and optionally
    ``init_batch_size`` (frames per pass of the data-dependent initialisation).

    Before the first epoch of a fresh run, :meth:`on_fit_start` initialises,
    from the training frames and in this order, the global normalisation
    statistics, the ActNorm layers, and (``mean_init: data``) the class means;
    all three live in checkpointed state, so a resumed run skips this.

    Batches are :class:`speechbrain_fdnf.data.frames.FrameBatch` objects. A
    label of ``-1`` marks an unknown class (e.g. TIMIT test speakers); the
    prior marginalises that factor for that frame.
    """

    def fit(self, epoch_counter, train_set, valid_set=None, **kwargs):
        """Like ``Brain.fit``; keeps ``train_set`` for the data-dependent initialisation."""
        self._init_frames = train_set
        return super().fit(epoch_counter, train_set, valid_set, **kwargs)

    def on_fit_start(self):
        """Recovers the latest checkpoint, or initialises from data on a fresh run."""
        super().on_fit_start()
        frames = getattr(self, "_init_frames", None)
        if frames is not None and not isinstance(frames, torch.utils.data.DataLoader):
            self.initialize_from_data(frames)

    @torch.no_grad()
    def initialize_from_data(self, frames):
        """Data-dependent initialisation (skipped for what a checkpoint already holds)."""
        chunk = getattr(self.hparams, "init_batch_size", 65536)
        normalize, model = self.modules.normalize, unwrap(self.modules.model)
        if normalize.count == 0:
            normalize.train()
            for batch in frames.batches(chunk):
                normalize(batch.feats.to(self.device)[:, None, :], epoch=0)
            logger.info("Global normalisation statistics from %d training frames", len(frames))
        normalize.eval()
        if any(not bool(m.initialized) for m in model.modules() if isinstance(m, ActNorm)):
            generator = torch.Generator().manual_seed(0)
            first = frames.__getitems__(torch.randperm(len(frames), generator=generator)[:chunk])
            model.train()
            model.encode(self.normalized(first.feats.to(self.device)))  # ActNorms pick up this batch
            logger.info("ActNorm layers initialised from %d training frames", len(first))
        prior = getattr(model, "prior", None)
        if prior is not None and not bool(prior.means_initialized):
            model.eval()

            def codes():
                for batch in frames.batches(chunk):
                    batch = batch.to(self.device)
                    yield model.encode(self.normalized(batch.feats))[0], self.factor_labels(batch, prior)

            empty = prior.init_means_from_data(codes())
            for name, classes in empty.items():
                if classes:
                    logger.warning("Factor %s: classes %s have no training frames; their means stay at zero", name, classes)
            logger.info("Class means initialised from the latent codes of the training frames")

    def normalized(self, feats):
        """Global mean/variance normalisation of a ``(batch, dim)`` tensor (statistics frozen)."""
        normalize = self.modules.normalize
        # InputNormalization keeps its statistics as plain tensors, restored on the
        # device it was built for; follow the batch (e.g. --device cuda:0).
        if normalize.glob_mean.device != feats.device:
            normalize.glob_mean = normalize.glob_mean.to(feats.device)
            normalize.glob_std = normalize.glob_std.to(feats.device)
        return normalize(feats[:, None, :], epoch=float("inf"))[:, 0, :]

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

    def compute_forward(self, batch, stage):
        """Normalises the frames; returns them with the labels the model needs."""
        batch = batch.to(self.device)
        prior = getattr(unwrap(self.modules.model), "prior", None)
        labels = self.factor_labels(batch, prior) if prior is not None else {}
        return self.normalized(batch.feats), labels

    def compute_objectives(self, predictions, batch, stage):
        """Mean per-frame objective in nats per dimension (NLL, or negative ELBO for the VAE)."""
        feats, labels = predictions
        return self.modules.model(feats, labels).mean()  # forward() is the objective (DDP-safe)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the losses, anneals the learning rate and saves a checkpoint after validation."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        stats = {"loss": stage_loss}
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(epoch)
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr},
                train_stats={"loss": self.train_loss},
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(meta={"loss": stage_loss}, num_to_keep=1)
        else:
            split = getattr(self, "eval_split", "test")
            self.test_losses = dict(getattr(self, "test_losses", {}), **{split: stage_loss})
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current, "split": split},
                test_stats={"nll_nats_per_dim": stage_loss},
            )

    def evaluate_split(self, name, frames, **loader_kwargs):
        """``evaluate`` on one named frame set; the log line and ``test_losses`` carry the name.

        For flows the value is the negative log-likelihood in nats per
        dimension, conditioned on the labels the split has (TIMIT test
        speakers are unknown, so the speaker factor is marginalised there);
        for the VAE it is the negative ELBO, an upper bound on the NLL.
        """
        self.eval_split = name
        loader_kwargs.setdefault("collate_fn", frames.collate)
        return self.evaluate(frames, test_loader_kwargs=loader_kwargs)
