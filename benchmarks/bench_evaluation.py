#!/usr/bin/env python3
"""How the evaluation's time grows with the number of frames it scores.

The evaluation (``speechbrain_fdnf.evaluation.evaluate_models``, what
``recipes/TIMIT/evaluate.py`` runs per seed) is run on one exported f-DNF of
the recipes' architecture over synthetic TIMIT-shaped frame sets of growing
size: utterances of one speaker each, phones in runs of a few frames, the
classes fixed (39 phones, ``--speakers`` speakers), so only the number of
frames changes. Each stage of the driver is timed by wrapping the function
it calls, and for each stage the table gives its seconds at every size and
the growth exponent ``log(t_largest / t_smallest) / log(n_largest /
n_smallest)``: 1 is linear, above 1 faster than linear. Stages of fixed
size (the 2000-frame tables' draws, the t-SNE sample) show exponents near 0.

Not included: the parallel conversion distortion, which needs audio (it
converts whole utterances; on the full corpus 591 pairs). Its cost grows
with the number of pairs and each target speaker's pool, not with the
scored frames.

The model is untrained (ActNorm initialised on the data, the class means set
to the class-mean codes), which changes no stage's cost: every stage's work
depends on the numbers of frames and classes, not on what the model learnt.

Usage::

    python benchmarks/bench_evaluation.py                       # 50 k, 100 k, 200 k training frames
    python benchmarks/bench_evaluation.py --train-frames 100000 400000 --out benchmarks/latest_evaluation.md
"""

import argparse
import contextlib
import math
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hyperpyyaml import load_hyperpyyaml  # noqa: E402
from speechbrain.dataio.encoder import CategoricalEncoder  # noqa: E402
from speechbrain.processing.features import InputNormalization  # noqa: E402

from speechbrain_fdnf.data.frames import FrameSet  # noqa: E402
from speechbrain_fdnf.engine import FeatureFlow  # noqa: E402
from speechbrain_fdnf.evaluation import driver, sections  # noqa: E402
from speechbrain_fdnf.evaluation.tsne import tsne_grid  # noqa: E402
from speechbrain_fdnf.export import export_model  # noqa: E402
from speechbrain_fdnf.lobes import with_class_counts  # noqa: E402

PHONES, DIM, FRAMES_PER_UTTERANCE = 39, 40, 300
#: The f-DNF of hparams/fdnf.yaml (8 blocks of ActNorm, LU and affine couplings, 24 + 16 dims), as an export reads it.
MODEL_YAML = """
sample_rate: 16000
context: 0
input_dim: 40
compute_features: !new:speechbrain.lobes.features.Fbank {n_mels: 40}
model: !new:speechbrain_fdnf.lobes.DiscriminativeFlow
    flow: !new:speechbrain_fdnf.lobes.RealNVP {input_dim: 40, num_blocks: 8, hidden_size: 256}
    prior: !new:speechbrain_fdnf.lobes.FactorialGaussianPrior
        factors: [{name: phone, dim: 24}, {name: speaker, dim: 16}]
        residual_dim: 0
        mean_init: random
"""
#: The evaluation's settings as in hparams/evaluate.yaml (probe epochs as given on the command line).
CONFIG = {"tables": [["phone", "speaker"], ["speaker", "phone"]], "num_frames": 2000, "knn_k": 4,
          "knn_gates": ["decoded"], "knn_gate_smooth": 1, "deviation_scales": [0.5, 0.0], "probe_hidden": 512,
          "leakage_max_train": 20000, "tsne_classes": 6, "tsne_per_class": 80}
#: Driver functions and methods timed as stages: (owner, attribute, stage name).
STAGES = [
    (driver, "load_or_train_probe", "MLP probes (trained)"),
    (driver.SpeechFactorizer, "from_hparams", "loading the model"),
    (FeatureFlow, "encode_all", "encoding the training frames"),
    (FeatureFlow, "fit_class_means", "class means"),
    (FeatureFlow, "fit_sequence_decoders", "phone decoder fit"),
    # the reference rows build their work lazily: the ceiling, the oracle, kNN matching and its gates (the
    # phone decoded along every utterance) are timed inside the tables that use them
    (sections, "posterior_table", "posterior tables (incl. ceiling, oracle, matching, gates)"),
    (sections, "leakage_probes", "leakage probes"),
    (sections, "structure_table", "latent structure"),
]


def synthetic_frames(num_frames, speakers, seed):
    """A TIMIT-shaped ``FrameSet``: utterances of one speaker, phones in runs of 3-12 frames."""
    gen = torch.Generator().manual_seed(seed)
    utterances = max(1, num_frames // FRAMES_PER_UTTERANCE)
    utterance = torch.arange(num_frames) * utterances // num_frames
    speaker = (torch.arange(utterances) % speakers)[utterance]
    runs = torch.randint(3, 13, (num_frames,), generator=gen).cumsum(0)
    run_of = torch.searchsorted(runs, torch.arange(num_frames), right=True)
    phone = torch.randint(PHONES, (int(run_of.max()) + 1,), generator=gen)[run_of]
    phone_means = torch.randn(PHONES, DIM, generator=torch.Generator().manual_seed(1)) * 2
    speaker_means = torch.randn(speakers, DIM, generator=torch.Generator().manual_seed(2))
    feats = phone_means[phone] + speaker_means[speaker] + torch.randn(num_frames, DIM, generator=gen)
    return FrameSet({"feats": feats, "utterance": utterance, "labels": {"phone": phone, "speaker": speaker}})


def exported_model(folder, frames, speakers):
    """An inference folder of the f-DNF, ActNorm initialised and class means set on ``frames``."""
    (folder / "train.yaml").write_text(MODEL_YAML)
    model = load_hyperpyyaml(MODEL_YAML)["model"]
    model = with_class_counts(model, {"phone": PHONES, "speaker": speakers})
    batch = frames.all()
    normalize = InputNormalization(norm_type="global")
    normalize(batch.feats[:, None], torch.ones(len(batch)), epoch=0)
    normalized = normalize(batch.feats[:, None], torch.ones(len(batch)), epoch=1)[:, 0]
    with torch.no_grad():
        model.train()
        model.encode(normalized[:20000])  # ActNorm's data-dependent initialisation
        model.eval()
        model.prior.init_means_from_data([(model.encode(normalized)[0], batch.labels)])
    encoders = {}
    for name, count in (("phone", PHONES), ("speaker", speakers)):
        encoders[name] = CategoricalEncoder()
        encoders[name].update_from_iterable([f"{name}{i}" for i in range(count)])
    export_model(folder / "inference", model, normalize, encoders, folder / "train.yaml")
    return encoders


@contextlib.contextmanager
def timed_stages(seconds):
    """Wraps every stage of :data:`STAGES` so that its calls add their time to ``seconds[stage]``;
    a stage called inside another (encoding inside the decoder's fit) counts for the outer one only."""
    originals, active = [], []

    def wrap(function, stage):
        def timed(*args, **kwargs):
            if active:
                return function(*args, **kwargs)
            active.append(stage)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - start
                active.pop()
        return timed

    for owner, name, stage in STAGES:
        original = owner.__dict__[name]
        originals.append((owner, name, original))
        if isinstance(original, classmethod):
            setattr(owner, name, classmethod(wrap(original.__func__, stage)))
        else:
            setattr(owner, name, wrap(original, stage))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def run_once(train_frames, speakers, probe_epochs, seed=0):
    """``{stage: seconds}`` of one evaluation with ``train_frames`` training and 40 % as many held-out frames."""
    train = synthetic_frames(train_frames, speakers, seed)
    heldout = synthetic_frames(int(train_frames * 0.4), speakers, seed + 1)  # TIMIT: 239 k held-out to 601 k
    seconds = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        encoders = exported_model(tmp, train, speakers)
        config = {**CONFIG, "output_root": str(tmp), "probe_epochs": probe_epochs}
        models = {"f-DNF": (tmp / "inference", tmp / "nll.json")}
        start = time.perf_counter()
        with timed_stages(seconds):
            _, figure, _ = driver.evaluate_models(models, encoders, {"train": train, "heldout": heldout}, config, seed)
        t_sne = time.perf_counter()
        tsne_grid(figure["latents"], figure["sample_labels"], figure["class_names"], tmp / "tsne.png", seed)
        seconds["t-SNE figure"] = time.perf_counter() - t_sne
        seconds["total"] = time.perf_counter() - start
    seconds["other"] = seconds["total"] - sum(value for stage, value in seconds.items() if stage != "total")
    return dict(seconds)


def exponent(sizes, times):
    """Growth exponent between the smallest and the largest size (``nan`` if a time is too small to read)."""
    if min(times[0], times[-1]) < 1e-3:
        return float("nan")
    return math.log(times[-1] / times[0]) / math.log(sizes[-1] / sizes[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-frames", type=int, nargs="+", default=[50000, 100000, 200000])
    parser.add_argument("--speakers", type=int, default=100)
    parser.add_argument("--probe-epochs", type=int, default=8, help="as hparams/evaluate.yaml")
    parser.add_argument("--no-warmup", action="store_true", help="skip the small untimed first evaluation")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    sizes = sorted(args.train_frames)
    if len(sizes) < 2:
        parser.error("--train-frames needs at least two sizes")
    if not args.no_warmup:  # lazy initialisation (first calls of torch and scikit-learn) must not count for the first size
        run_once(max(1000, sizes[0] // 10), args.speakers, 1)
    runs = []
    for size in sizes:
        runs.append(run_once(size, args.speakers, args.probe_epochs))
        print(f"{size} training frames: {runs[-1]['total']:.1f} s", file=sys.stderr)
    stages = [stage for _, _, stage in STAGES] + ["t-SNE figure", "other", "total"]
    stages = [stage for stage in stages if any(stage in run for run in runs)]
    lines = [f"f-DNF evaluation ({PHONES} phones, {args.speakers} speakers, held-out = 0.4 x training frames, "
             f"{args.probe_epochs} probe epochs), {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
             "", "| stage | " + " | ".join(f"{size:,} frames s" for size in sizes) + " | growth exponent |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for stage in stages:
        times = [run.get(stage, 0.0) for run in runs]
        growth = exponent(sizes, times)
        lines.append(f"| {stage} | " + " | ".join(f"{value:.2f}" for value in times)
                     + f" | {'-' if math.isnan(growth) else f'{growth:.2f}'} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
