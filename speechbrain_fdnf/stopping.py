"""When training stops, and how the learning rate follows the valid loss on the way.

The recipes train to convergence: :class:`EarlyStopper` ends the epoch loop once the valid NLL has
not improved for a patience of epochs, SpeechBrain's ``ReduceLROnPlateau`` halves the learning rate
on the way (:func:`annealed_learning_rate` calls any of SpeechBrain's epoch-level schedulers), and
:func:`stopping_reason` puts in words why the loop ended.

Authors
 * speechbrain-fdnf developers
"""

import logging

import speechbrain as sb
import torch  # noqa: F401  (the doctests' optimizer)
import yaml
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks
from speechbrain.utils.epoch_loop import EpochCounterWithStopper

logger = logging.getLogger(__name__)


@register_checkpoint_hooks
class EarlyStopper(EpochCounterWithStopper):
    """SpeechBrain's ``EpochCounterWithStopper`` whose whole state is checkpointed, with an absolute
    improvement threshold.

    SpeechBrain 1.1.2 registers the checkpoint hooks of ``EpochCounter`` only, so a stopper saves
    its epoch but not its best epoch, best loss and stop flag: a resumed run would start its
    patience over, and a finished run would train again. Registering the stopper's own hooks
    fixes that. Its improvement test is relative (a loss below ``(1 - 1e-6)`` times the best), which
    for a negative NLL lets an equal or slightly worse loss count as better; here a loss improves
    only when it is ``min_delta`` below the best (in the loss's units: nats per dimension).

    Arguments
    ---------
    limit : int
        The cap on epochs.
    limit_to_stop : int
        The patience: epochs without improvement that end training.
    limit_warmup : int
        Epochs before the patience counts.
    direction : str
        ``"min"`` or ``"max"``.
    min_delta : float
        The smallest change that counts as an improvement (absolute).

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> stopper = EarlyStopper(limit=10, limit_to_stop=2, limit_warmup=0, direction="min")
    >>> for loss in [3.0, 2.0, 2.5]:  # epochs 1-3
    ...     epoch = next(stopper)
    ...     stopper.update_metric(loss)
    >>> stopper._save(folder / "counter.ckpt")
    >>> resumed = EarlyStopper(limit=10, limit_to_stop=2, limit_warmup=0, direction="min")
    >>> resumed._recover(folder / "counter.ckpt")
    >>> resumed.current, resumed.best_limit, resumed.best_score
    (3, 2, 2.0)
    """

    def __init__(self, limit, limit_to_stop, limit_warmup=0, direction="min", min_delta=0.0):
        super().__init__(limit, limit_to_stop, limit_warmup, direction)
        self.min_delta = float(min_delta)

    def update_metric(self, current_metric):
        """Records the epoch's loss: the best epoch moves only on an improvement of more than ``min_delta``."""
        if self.current > self.limit_warmup:
            if self.sign * current_metric < self.sign * self.best_score - self.min_delta:
                self.best_limit, self.best_score = self.current, current_metric
            self.should_stop = self.current - self.best_limit >= self.limit_to_stop
            if self.should_stop:
                logger.info("%d epochs without an improvement of %g: patience exhausted, stopping",
                            self.current - self.best_limit, self.min_delta)

    @mark_as_saver
    def _save(self, path):
        super()._save(path)

    @mark_as_loader
    def _recover(self, path, end_of_epoch=True, device=None):
        with open(path, encoding="utf-8") as handle:
            saved = yaml.safe_load(handle)
        if isinstance(saved, int):  # a plain EpochCounter's checkpoint (the epoch alone): patience starts again
            self.current = saved if end_of_epoch else saved - 1
            return
        super()._recover(path, end_of_epoch=end_of_epoch, device=device)


def annealed_learning_rate(scheduler, optimizer, epoch, valid_loss):
    """``(old_lr, new_lr)`` from any of SpeechBrain's epoch-level schedulers, whatever it is called with.

    ``ReduceLROnPlateau`` takes the optimizers, the epoch and the loss; the
    metric-driven ``NewBobScheduler`` takes the loss; the others (e.g.
    ``LinearScheduler``) the epoch.

    Example
    -------
    >>> from speechbrain.nnet.schedulers import LinearScheduler, ReduceLROnPlateau
    >>> optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    >>> round(annealed_learning_rate(LinearScheduler(0.1, 0.01, 10), optimizer, 10, 1.0)[1], 6)
    0.01
    >>> plateau = ReduceLROnPlateau(lr_min=0.01, factor=0.5, patience=0, dont_halve_until_epoch=0)
    >>> [annealed_learning_rate(plateau, optimizer, epoch, loss)[1] for epoch, loss in [(1, 2.0), (2, 2.5)]]
    [0.1, 0.05]
    """
    if isinstance(scheduler, sb.nnet.schedulers.ReduceLROnPlateau):
        return scheduler([optimizer], current_epoch=epoch, current_loss=valid_loss)
    if isinstance(scheduler, sb.nnet.schedulers.NewBobScheduler):
        return scheduler(valid_loss)
    return scheduler(epoch)


def stopping_reason(counter):
    """Why the epoch loop of ``counter`` ended, in words (for the train log).

    Example
    -------
    >>> counter = EarlyStopper(limit=10, limit_to_stop=2, limit_warmup=0, direction="min")
    >>> for loss in [3.0, 2.0, 2.5, 2.4]:
    ...     epoch = next(counter)
    ...     counter.update_metric(loss)
    >>> stopping_reason(counter)
    'converged: no lower valid loss for 2 epochs after epoch 2 (2.0000), stopped at epoch 4 of at most 10'
    """
    if getattr(counter, "should_stop", False):
        return (f"converged: no lower valid loss for {counter.limit_to_stop} epochs after epoch "
                f"{counter.best_limit} ({counter.best_score:.4f}), stopped at epoch {counter.current} of at most "
                f"{counter.limit}")
    if counter.current >= counter.limit:
        best = f", best valid loss at epoch {counter.best_limit}" if hasattr(counter, "best_limit") else ""
        return f"reached the cap of {counter.limit} epochs{best}"
    return f"stopped at epoch {counter.current} of at most {counter.limit}"
