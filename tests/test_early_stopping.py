"""Training to convergence: the epoch loop stops on a plateau of the valid NLL, says why, resumes its patience
after an interruption, and the best epoch is the model that is evaluated."""

import re

import speechbrain as sb
import torch
from speechbrain.nnet.schedulers import ReduceLROnPlateau
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.train_logger import FileTrainLogger

from speechbrain_fdnf.brain import FlowBrain
from speechbrain_fdnf.checkpoints import VerifiedCheckpointer
from speechbrain_fdnf.data.frames import FrameSet
from speechbrain_fdnf.lobes import DiscriminativeFlow, FactorialGaussianPrior, RealNVP
from speechbrain_fdnf.stopping import EarlyStopper


def frames(seed):
    generator = torch.Generator().manual_seed(seed)
    feats = torch.randn(1024, 6, generator=generator) * 2 + 1
    labels = {"phone": torch.randint(3, (1024,), generator=generator)}
    return FrameSet({"feats": feats, "utterance": torch.arange(1024) // 64, "labels": labels})


class ScriptedValid(FlowBrain):
    """A FlowBrain whose valid loss of epoch ``n`` is ``script[n - 1]`` (training and test stay real)."""

    script = ()

    def evaluate_batch(self, batch, stage):
        if stage == sb.Stage.VALID:
            return torch.tensor(self.script[self.hparams.epoch_counter.current - 1])
        return super().evaluate_batch(batch, stage)


def make_brain(folder, limit, script, patience=2):
    """A small f-DNF on random frames whose valid losses follow ``script``."""
    torch.manual_seed(0)
    prior = FactorialGaussianPrior([{"name": "phone", "dim": 2, "num_classes": 3}], residual_dim=4)
    model = DiscriminativeFlow(RealNVP(6, num_blocks=2, hidden_size=16), prior)
    normalize = InputNormalization(norm_type="global")
    counter = EarlyStopper(limit=limit, limit_to_stop=patience, limit_warmup=0, direction="min")
    annealing = ReduceLROnPlateau(lr_min=1e-5, factor=0.5, patience=0, dont_halve_until_epoch=0)
    checkpointer = VerifiedCheckpointer(folder / "save", {"model": model, "normalize": normalize, "counter": counter,
                                                          "lr_annealing": annealing})
    brain = ScriptedValid(
        modules={"model": model, "normalize": normalize},
        opt_class=lambda params: torch.optim.Adam(params, lr=1e-3),
        hparams={"epoch_counter": counter, "lr_annealing": annealing, "train_logger": FileTrainLogger(folder / "log.txt"),
                 "init_batch_size": 1024},
        run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=checkpointer,
    )
    brain.script = script
    return brain


def fit(brain, train, valid):
    brain.fit(brain.hparams.epoch_counter, train, valid,
              train_loader_kwargs={"batch_size": 256, "collate_fn": train.collate},
              valid_loader_kwargs={"batch_size": 1024, "collate_fn": valid.collate})


def logged_epochs(folder):
    return [int(number) for number in re.findall(r"^epoch: (\d+)", (folder / "log.txt").read_text(), re.MULTILINE)]


def logged_rates(folder):
    return [float(rate) for rate in re.findall(r"^epoch: \d+, lr: (\S+)", (folder / "log.txt").read_text(), re.MULTILINE)]


PLATEAU = [3.0, 2.0, 2.5, 2.4, 1.0, 0.5]  # best at epoch 2, then no lower loss for 2 epochs


def test_training_stops_on_a_plateau_of_the_valid_nll_and_says_why(tmp_path):
    brain = make_brain(tmp_path, limit=50, script=PLATEAU)
    fit(brain, frames(0), frames(1))
    assert logged_epochs(tmp_path) == [1, 2, 3, 4]  # stopped after 2 epochs without improvement, far below the cap
    assert brain.stopping_reason.startswith("converged: no lower valid loss for 2 epochs after epoch 2 (2.0000)")
    assert "stopped: converged" in (tmp_path / "log.txt").read_text()
    assert logged_rates(tmp_path)[-1] < logged_rates(tmp_path)[0]  # halved on the plateau
    # the evaluation recovers the best epoch's checkpoint, kept beside the latest one
    assert len(list((tmp_path / "save").glob("CKPT+*"))) == 2
    brain.evaluate_split("heldout", frames(2), batch_size=1024)
    assert "Epoch loaded: 2, split: heldout" in (tmp_path / "log.txt").read_text()


def test_a_run_that_keeps_improving_reaches_its_cap_and_says_so(tmp_path):
    brain = make_brain(tmp_path, limit=3, script=[3.0, 2.0, 1.0])
    fit(brain, frames(0), frames(1))
    assert logged_epochs(tmp_path) == [1, 2, 3]
    assert brain.stopping_reason == "reached the cap of 3 epochs, best valid loss at epoch 3"
    assert len(set(logged_rates(tmp_path))) == 1  # never halved


def test_an_interrupted_run_keeps_counting_its_patience_when_resumed(tmp_path):
    fit(make_brain(tmp_path, limit=3, script=PLATEAU), frames(0), frames(1))  # cut short, as by a kill after epoch 3
    assert logged_epochs(tmp_path) == [1, 2, 3]
    resumed = make_brain(tmp_path, limit=50, script=PLATEAU)
    fit(resumed, frames(0), frames(1))
    # the best epoch (2) and its loss come back with the checkpoint: epoch 4 is the second without
    # improvement and ends the run (a stopper that forgot them would train on through epoch 6)
    assert logged_epochs(tmp_path) == [1, 2, 3, 4]
    assert resumed.stopping_reason.startswith("converged: no lower valid loss for 2 epochs after epoch 2")
    again = make_brain(tmp_path, limit=50, script=PLATEAU)  # and a finished run trains nothing more
    fit(again, frames(0), frames(1))
    assert logged_epochs(tmp_path) == [1, 2, 3, 4]


def test_an_improvement_smaller_than_min_delta_does_not_count_and_old_counters_resume(tmp_path):
    stopper = EarlyStopper(limit=20, limit_to_stop=2, min_delta=0.01)
    for loss in [-0.300, -0.305, -0.309]:  # falls of 0.005 and 0.009: below min_delta
        next(stopper)
        stopper.update_metric(loss)
    assert stopper.best_limit == 1 and stopper.should_stop
    # a checkpoint of SpeechBrain's plain counter (the epoch alone) resumes, its patience counted anew
    (tmp_path / "counter.ckpt").write_text("7")
    resumed = EarlyStopper(limit=20, limit_to_stop=2)
    resumed._recover(tmp_path / "counter.ckpt")
    assert resumed.current == 7 and resumed.best_limit == 0 and not resumed.should_stop
