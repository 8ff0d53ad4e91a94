"""The whole evaluation of trained models for one seed: posterior tables, leakage probes, NLL, t-SNE codes.

Every model is loaded from its exported inference folder through
:class:`~speechbrain_fdnf.inference.SpeechFactorizer`, the path a user
takes, and scored through its :class:`~speechbrain_fdnf.engine.FeatureFlow`;
the NLL comes from the ``nll.json`` its training run wrote.

Authors
 * speechbrain-fdnf developers
"""

from pathlib import Path

import torch

from speechbrain_fdnf.brain import read_nll
from speechbrain_fdnf.evaluation.parallel import conversion_distortion, matching_conversion, parallel_pairs
from speechbrain_fdnf.evaluation.probes import leakage_probes, load_or_train_probe
from speechbrain_fdnf.evaluation.structure import latent_structure
from speechbrain_fdnf.evaluation.tables import (CellMeanOracle, InferredClasses, NearestNeighbourMatching,
                                                RealFrameCeiling, existing_cells, kept_subspace, posterior_table,
                                                shift_by_class_means, standardised_features)
from speechbrain_fdnf.evaluation.tsne import tsne_sample
from speechbrain_fdnf.inference import SpeechFactorizer

#: Default posterior tables: (factor changed, factor that should stay).
TABLES = (("phone", "speaker"), ("speaker", "phone"))
#: The t-SNE grid's rows, and the two factors of the latent structure table.
TSNE_FACTORS = ("phone", "speaker")
#: The reference row of real frames in both manipulation tables.
CEILING = "real-frame ceiling"
#: Gates of the matching rows (config ``knn_gates``) -> what their row names add: the phone inferred over a
#: window of frames, or decoded along the utterance (``ClassSequenceDecoder``); the speaker over the utterance.
GATES = {"window": "", "decoded": ", phones decoded"}


def table_pairs(config):
    """``[(target, other), ...]`` from ``config["tables"]`` (default: phone and speaker manipulation)."""
    return [tuple(pair) for pair in (config.get("tables") or TABLES)]


def label_sets(config):
    """Every label set the tables, the probes and the t-SNE grid need, in a stable order."""
    names = list(TSNE_FACTORS)
    for pair in table_pairs(config):
        names += [name for name in pair if name not in names]
    return names


def evaluate_models(models, encoders, frames, config, seed, utterances=None):
    """Scores every model with the same probes and the same frames.

    Arguments
    ---------
    models : dict
        Display name -> ``(inference folder, nll.json)`` of a trained model.
    encoders : dict
        Label set -> ``CategoricalEncoder`` of the prepared data.
    frames : dict
        Split -> ``FrameSet`` (``train`` and ``heldout`` are used).
    config : dict
        The evaluation yaml: ``tables``, ``output_root`` (probe cache),
        ``probe_epochs``, ``probe_hidden``, ``num_frames``,
        ``leakage_max_train``, ``tsne_classes``, ``tsne_per_class``.
    seed : int
        Seeds the probes and every sample.
    utterances : dict, optional
        ``{"heldout": annotations, "references": annotations}`` (prepared
        JSON entries by id): with them, every model also gets the parallel
        conversion distortion of speaker manipulation (held-out utterances
        converted to a training speaker who read the same sentence); with
        ``"train"`` annotations too, so does each matching row (the pool:
        the target speaker's training utterances but the reading).

    Returns
    -------
    (dict, dict)
        ``{"probe_accuracy": ..., "models": {name: {"tables", "leakage", "nll"[, "structure"]}},
        "reference": {row: {"tables"}}}`` and the data of the t-SNE grid. The
        reference rows are the real-frame ceiling and, per flow, its
        cell-mean oracle (both draw targets only among cells with training
        frames; a frame whose own cell has none is left out), and
        non-parametric matching (``knn_k`` neighbours; 0 turns it off) in
        standardised features and, per factorial flow, in the kept factor's
        subspace (the protocol's targets), there also gated by the model's
        inferred kept class, once per entry of ``knn_gates`` (:data:`GATES`:
        ``window``, the phone from the ``2 knn_gate_smooth + 1`` frames around
        each frame; ``decoded``, the phone decoded along the utterance); with ``deviation_scales``, per
        model, the shift that keeps that share of each frame's deviation from
        its class mean (beyond the paper; 1 is the protocol's).
    """
    train, heldout = frames["train"].all(), frames["heldout"].all()
    factors = label_sets(config)
    candidates = {name: torch.unique(train.labels[name]).tolist() for name in factors}
    probes, probe_accuracy = {}, {}
    for name in factors:
        probes[name], probe_accuracy[name] = load_or_train_probe(
            Path(config["output_root"]) / "probes", name, train, heldout, len(encoders[name]),
            epochs=config["probe_epochs"], hidden_size=config["probe_hidden"], seed=seed,
        )
    sample = tsne_sample(frames["heldout"], encoders, config["tsne_classes"], config["tsne_per_class"], seed)
    num_classes = {name: len(encoders[name]) for name in factors}
    cells = {target: existing_cells(train.labels, target, other, num_classes[target], num_classes[other])
             for target, other in table_pairs(config)}

    def table_rows(move, restricted=False):
        return {target: posterior_table(move, probes, frames["heldout"], target, other, candidates[target],
                                        config["num_frames"], seed, cells=cells[target] if restricted else None)
                for target, other in table_pairs(config)}

    reference = {CEILING: {"tables": table_rows(RealFrameCeiling([heldout, train], num_classes, seed), True)}}
    pairs = parallel_pairs(utterances["heldout"], utterances["references"], seed) if utterances else []
    k = config.get("knn_k", 4)
    if k:  # non-parametric matching in the features: the baseline of matching in a factorized latent
        reference[f"kNN matching in Fbank (k={k})"] = {
            "tables": table_rows(NearestNeighbourMatching(train, standardised_features(train.feats), k))}
    results, codes = {}, {}
    for display, (folder, nll_file) in models.items():
        factorizer = SpeechFactorizer.from_hparams(source=folder)
        engine = factorizer.engine
        train_codes = engine.encode_all(train.feats)  # once: class means, oracles and matching pools share them
        for name in factors:
            if not engine.has_prior_means(name):
                engine.fit_class_means(name, train.feats, train.labels[name], len(encoders[name]), codes=train_codes)
        tables = table_rows(shift_by_class_means(engine))
        for scale in config.get("deviation_scales") or []:  # beyond the paper: the shift's trade-off curve
            reference[f"{display}, deviation x{scale:g}"] = {"tables": table_rows(shift_by_class_means(engine, scale))}
        prior = engine.prior
        factorial = len(engine.factors) > 1
        if factorial:  # one probe per subspace: what each part of the latent knows
            subspaces = {f"z_{name}": where for name, where in prior.slices.items() if where.stop > where.start}
        else:
            subspaces = {"z": slice(None)}
        leakage = leakage_probes(engine, subspaces, train, heldout, labels=factors,
                                 max_train=config["leakage_max_train"], seed=seed)
        results[display] = {"tables": tables, "leakage": leakage, "nll": read_nll(nll_file)}
        if pairs:
            results[display]["parallel"] = conversion_distortion(factorizer, pairs)
        if factorial and k and all(other in engine.factors for _, other in table_pairs(config)):
            # matched in the kept factor's subspace, pooled over the target class
            embed = kept_subspace(engine, (train.feats, train_codes))
            matchings = {f"{display} kNN matching (k={k})": (NearestNeighbourMatching(train, embed, k), {"gate": False})}
            gates = config.get("knn_gates") or []
            unknown = set(gates) - set(GATES)
            if unknown:
                raise ValueError(f"knn_gates: unknown gate(s) {sorted(unknown)}; known: {list(GATES)}")
            if "decoded" in gates and not factorizer.decoders:  # exported before the decoders: fit as training does
                factorizer.decoders = engine.fit_sequence_decoders(frames["train"], codes=train_codes)
            for name in gates:  # beyond kNN-VC: the model's own kept class gates the pool
                decode = name == "decoded"
                gate = InferredClasses(engine, frames["train"], frames["heldout"], config.get("knn_gate_smooth", 1),
                                       pool_codes=train_codes, decoders=factorizer.decoders if decode else None)
                matchings[f"{display} kNN matching gated by the model{GATES[name]} (k={k})"] = (
                    NearestNeighbourMatching(train, embed, k, gate=gate), {"gate": True, "decode": decode})
            reference_feats = {}  # the matching rows of one model read each reference once
            for row, (matching, how) in matchings.items():
                reference[row] = {"tables": table_rows(matching)}
                if matching.gate is not None:  # how often the model's kept class was right, behind those rows
                    reference[row]["gate_accuracy"] = matching.gate.accuracy()
                if pairs and "train" in utterances:  # the same conversion, scored against the real reading
                    convert = matching_conversion(factorizer, utterances["train"], k=k, cache=reference_feats, **how)
                    reference[row]["parallel"] = conversion_distortion(factorizer, pairs, convert=convert)
        if prior is not None:  # the flows: how additive their latent is, and what that costs
            oracle = CellMeanOracle(engine, train, num_classes, codes=train_codes)
            reference[f"{display} oracle (cell means)"] = {"tables": table_rows(oracle, True)}
            results[display]["structure"] = structure_table(engine, subspaces, train, num_classes,
                                                            config["leakage_max_train"], seed)
        with torch.no_grad():
            codes[display] = {}
            for name in TSNE_FACTORS:
                z = engine.encode(frames["heldout"].batch(sample[name][0]).feats)
                if factorial and name in engine.factors:
                    z = prior.subspace(z, name)  # f-DNF: the matching subspace
                codes[display][name] = z.numpy()
    figure_data = {
        "latents": codes,
        "sample_labels": {name: frames["heldout"].labels[name][sample[name][0]].numpy() for name in TSNE_FACTORS},
        "class_names": {name: dict(encoders[name].ind2lab) for name in TSNE_FACTORS},
    }
    return {"probe_accuracy": probe_accuracy, "models": results, "reference": reference}, figure_data


@torch.no_grad()
def structure_table(engine, subspaces, train, num_classes, max_frames, seed):
    """``{subspace: shares}`` of :func:`~speechbrain_fdnf.evaluation.structure.latent_structure` by phone and
    speaker, on a seeded sample of ``max_frames`` training codes."""
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:max_frames]
    codes = engine.encode_all(train.feats[pick])
    first, second = TSNE_FACTORS
    table = {}
    for name, where in subspaces.items():
        shares = latent_structure(codes[:, where], train.labels[first][pick], train.labels[second][pick],
                                  num_classes[first], num_classes[second])
        table[name] = {first: shares["first"], second: shares["second"], "interaction": shares["interaction"],
                       "within": shares["within"], "within_variance_per_dim": shares["within_variance_per_dim"]}
    return table
