"""The evaluation's sections: each computes its part of the results and writes its part of the report.

Every section has the same signature: :meth:`Section.start` (rows that need no model, once per
seed), :meth:`Section.model` (its results for one model) and :meth:`Section.render` (its markdown
from the results aggregated over seeds). :data:`SECTIONS` lists them in the order they run and
are reported; the driver (:func:`~speechbrain_fdnf.evaluation.driver.evaluate_models`), the
report (:func:`~speechbrain_fdnf.evaluation.report.markdown`) and the yaml's ``sections`` key all
read that one list, so a new table is one :class:`Section` subclass and one line in it.

Rows of the manipulation tables are of three kinds (:data:`ROW_KINDS`): the paper's models, this
project's rows beyond the paper, and reference rows that frame the numbers; the report prints the
paper's rows first.

Authors
 * speechbrain-fdnf developers
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import torch

from speechbrain_fdnf.data.alignment import parallel_readings
from speechbrain_fdnf.evaluation.config import GATES, EvaluationConfig
from speechbrain_fdnf.evaluation.formatting import fmt
from speechbrain_fdnf.evaluation.movers import (CellMeanOracle, InferredClasses, ModelMatching, NearestNeighbourMatching,
                                                RealFrameCeiling, shift_by_class_means, standardised_features)
from speechbrain_fdnf.evaluation.paper import paper_name, paper_row
from speechbrain_fdnf.evaluation.parallel import conversion_distortion, matching_conversion
from speechbrain_fdnf.evaluation.probes import leakage_probes, load_or_train_probe
from speechbrain_fdnf.evaluation.structure import latent_structure
from speechbrain_fdnf.evaluation.tables import existing_cells, posterior_table, utterance_table
from speechbrain_fdnf.evaluation.tsne import tsne_sample
from speechbrain_fdnf.export import read_nll
from speechbrain_fdnf.factors import PAPER_FACTORS, symbol

#: The reference row of real frames in both manipulation tables.
CEILING = "real-frame ceiling"
#: Kinds of table rows, in the report's order, with the heading and one-line reading of each.
ROW_KINDS = {
    "paper": ("The paper's tables", "The five models of the paper under its protocol: a good factorization moves the "
              "changed factor far (large positive δ) and leaves the other (δ near 0)."),
    "beyond": ("Beyond the paper", "This project's methods under the same protocol and probes: the paired-frame model, "
               "non-parametric matching in the model's kept subspace, the shift with less of each frame's deviation."),
    "reference": ("Reference rows", "What frames the numbers: the real-frame ceiling (each frame replaced by a real frame "
                  "of its target cell: the best any manipulation can score under these probes), the cell-mean oracles "
                  "(a perfectly additive latent) and matching in plain features. The ceiling and the oracles draw "
                  "targets only among cells with training frames."),
}


def table_header(target, other):
    """The two header lines of a manipulation table: the changed factor's new class, the kept factor's own."""
    t, o = symbol(target) + "2", symbol(other)
    return [f"| model | p({t}\\|x) | p({t}\\|x') | δ({t}) | p({o}\\|x) | p({o}\\|x') | δ({o}) |",
            "|---|---|---|---|---|---|---|"]


def table_row(name, cell):
    """One row of a manipulation table from a :func:`~speechbrain_fdnf.evaluation.tables.posterior_table` cell."""
    return (f"| {name} | {fmt(cell['p_target_x'])} | {fmt(cell['p_target_x_prime'])} | {fmt(cell['delta_target'], True)} "
            f"| {fmt(cell['p_other_x'])} | {fmt(cell['p_other_x_prime'])} | {fmt(cell['delta_other'], True)} |")


@dataclass
class Run:
    """What every section of one seed's evaluation reads and writes.

    ``results`` (model -> section results), ``reference`` (row -> results) and ``row_kinds``
    (row -> a key of :data:`ROW_KINDS`) are filled by the sections; ``pairs`` holds the parallel
    readings the distortion scores, ``tsne_sample`` the t-SNE grid's frames and ``figure`` its data.
    """

    config: EvaluationConfig
    encoders: Dict
    frames: Dict
    seed: int
    utterances: Dict = None
    probes: Dict = field(default_factory=dict)
    probe_accuracy: Dict = field(default_factory=dict)
    results: Dict = field(default_factory=dict)
    reference: Dict = field(default_factory=dict)
    row_kinds: Dict = field(default_factory=dict)
    pairs: List = field(default_factory=list)
    tsne_sample: Dict = field(default_factory=dict)
    figure: Dict = field(default_factory=dict)
    speaker_models: Dict = field(default_factory=dict)
    subset: Dict = field(default_factory=dict)
    conversion: Dict = field(default_factory=dict)

    def __post_init__(self):
        self.train, self.heldout = self.frames["train"].all(), self.frames["heldout"].all()
        factors = self.config.label_sets()
        self.candidates = {name: torch.unique(self.train.labels[name]).tolist() for name in factors}
        self.num_classes = {name: len(self.encoders[name]) for name in factors}
        self.cells = {target: existing_cells(self.train.labels, target, other, self.num_classes[target],
                                             self.num_classes[other])
                      for target, other in self.config.table_pairs()}

    def table_rows(self, move, restricted=False):
        """``{target: posterior_table(...)}`` of a mover for every table (``restricted``: only existing cells)."""
        return {target: posterior_table(move, self.probes, self.frames["heldout"], target, other,
                                        self.candidates[target], self.config.num_frames, self.seed,
                                        cells=self.cells[target] if restricted else None)
                for target, other in self.config.table_pairs()}

    def add_row(self, name, kind, **values):
        """A row beside the models (``kind``: a key of :data:`ROW_KINDS`)."""
        self.reference[name] = values
        self.row_kinds[name] = kind
        return self.reference[name]


@dataclass
class Model:
    """One model under evaluation, loaded as a user loads it; its codes of the training frames are computed on
    first use and shared by every section that reads them."""

    display: str
    factorizer: object
    nll_file: str
    train_feats: torch.Tensor = None
    _train_codes: torch.Tensor = None

    @property
    def train_codes(self):
        """The model's codes of every training frame (encoded once, when a section first asks)."""
        if self._train_codes is None:
            self._train_codes = self.engine.encode_all(self.train_feats)
        return self._train_codes

    @property
    def engine(self):
        """Its :class:`~speechbrain_fdnf.engine.FeatureFlow`."""
        return self.factorizer.engine

    @property
    def factorial(self):
        """Whether it has more than one factor subspace (matching keeps the others)."""
        return len(self.engine.factors) > 1

    @property
    def subspaces(self):
        """``{name: slice}`` of the latent the leakage and structure tables read (the whole ``z`` for one factor)."""
        if self.factorial:
            return {f"z_{name}": where for name, where in self.engine.prior.slices.items() if where.stop > where.start}
        return {"z": slice(None)}


class Section:
    """A part of the evaluation: its results (:meth:`start`, :meth:`model`) and its report (:meth:`render`)."""

    #: Its name in the yaml's ``sections``.
    name = ""

    def start(self, run):
        """Rows that need no model (once per seed, before the models)."""

    def model(self, run, model):
        """Its results for ``model`` (into ``run.results[model.display]`` or rows of ``run.reference``)."""

    def finish(self, run):
        """Results that need every model (once per seed, after the models)."""

    def render(self, summary, row_kinds, config):
        """Its markdown lines from the aggregated ``summary``; none where it has nothing to show."""
        return []


class PosteriorTables(Section):
    """The paper's tables: the protocol's shift for every model; the real-frame ceiling; the shift with
    ``deviation_scales`` (beyond the paper). The report prints every row with tables, one table per kind."""

    name = "tables"

    def start(self, run):
        ceiling = RealFrameCeiling([run.heldout, run.train], run.num_classes, run.seed)
        run.add_row(CEILING, "reference", tables=run.table_rows(ceiling, True))

    def model(self, run, model):
        run.results[model.display]["tables"] = run.table_rows(shift_by_class_means(model.engine))
        for scale in run.config.deviation_scales:  # beyond the paper: the shift's trade-off curve
            run.add_row(f"{model.display}, deviation x{scale:g}", "beyond",
                        tables=run.table_rows(shift_by_class_means(model.engine, scale)))

    def render(self, summary, row_kinds, config):
        rows = {**summary["models"], **summary.get("reference", {})}
        lines = []
        for kind, (heading, reading) in ROW_KINDS.items():
            chosen = {name: row for name, row in rows.items() if "tables" in row and row_kinds.get(name, "paper") == kind}
            if not chosen:
                continue
            lines += [f"## {heading}", "", reading, ""]
            for target, other in config.table_pairs():
                lines += [f"### {target.capitalize()} manipulation ({other} should stay)", "", *table_header(target, other)]
                for name, row in chosen.items():
                    cell = row["tables"][target]
                    lines.append(table_row(name, cell))
                lines.append("")
        return lines


class Leakage(Section):
    """Linear probes of every label set on each latent subspace: what each part of the latent knows."""

    name = "leakage"

    def model(self, run, model):
        run.results[model.display]["leakage"] = leakage_probes(
            model.engine, model.subspaces, run.train, run.heldout, labels=run.config.label_sets(),
            max_train=run.config.leakage_max_train, seed=run.seed)

    def render(self, summary, row_kinds, config):
        factors = list(summary["probe_accuracy"])
        lines = ["## Leakage probes (linear classifiers on latent subspaces, held-out accuracy)", "",
                 "Each label should be readable from its own subspace and not from the others.", "",
                 "| model | subspace | " + " | ".join(factors) + " |", "|---|---|" + "---|" * len(factors)]
        for model, result in summary["models"].items():
            for subspace, accuracy in result.get("leakage", {}).items():
                lines.append(f"| {model} | {subspace} | " + " | ".join(fmt(accuracy[name]) for name in factors) + " |")
        return lines + [""]


class Likelihood(Section):
    """The held-out and test NLL each training run recorded beside its export."""

    name = "nll"

    def model(self, run, model):
        run.results[model.display]["nll"] = read_nll(model.nll_file)

    def render(self, summary, row_kinds, config):
        lines = ["## Negative log-likelihood (nats per dimension; VAE: negative ELBO, an upper bound)", "",
                 "| model | held-out (labels known) | test (speaker marginalised) |", "|---|---|---|"]
        for model, result in summary["models"].items():
            nll = result.get("nll", {})
            lines.append(f"| {model} | {fmt(nll['heldout']) if 'heldout' in nll else '-'} | "
                         f"{fmt(nll['test']) if 'test' in nll else '-'} |")
        return lines + [""]


class Distortion(Section):
    """Parallel conversion distortion: held-out utterances converted to a training speaker who read the
    same sentence, against that speaker's real reading (the field's objective measure; no probe)."""

    name = "distortion"

    def start(self, run):
        utterances = run.utterances
        run.pairs = parallel_readings(utterances["heldout"], utterances["references"], run.seed) if utterances else []

    def model(self, run, model):
        if run.pairs:
            run.results[model.display]["parallel"] = conversion_distortion(model.factorizer, run.pairs)

    def render(self, summary, row_kinds, config):
        rows = {**summary["models"], **summary.get("reference", {})}
        parallel = {model: result["parallel"] for model, result in rows.items() if "parallel" in result}
        if not parallel:
            return []
        first = next(iter(parallel.values()))
        lines = ["## Parallel conversion distortion (speaker manipulation of held-out utterances; mean log-Mel "
                 "distance in dB to the target speaker's real reading of the same sentence, aligned by phone segments)", "",
                 f"{first['pairs']['mean']:.0f} utterance pairs, {first['frames']['mean']:.0f} aligned speech frames; "
                 "lower is closer to the target's reading.", "",
                 "| model | converted x' | unconverted x |", "|---|---|---|"]
        for model, values in parallel.items():
            lines.append(f"| {model} | {fmt(values['converted_db'])} | {fmt(values['unconverted_db'])} |")
        return lines + [""]


class Matching(Section):
    """Non-parametric matching (kNN-VC style): in standardised features (a reference row) and, per factorial
    flow, in its kept subspace, ungated and gated by the model's inferred kept class once per entry of
    ``knn_gates`` (the code :meth:`SpeechFactorizer.match <speechbrain_fdnf.inference.SpeechFactorizer.match>`
    runs, also scored by the parallel distortion); reports how often each gate's class was right."""

    name = "matching"

    def start(self, run):
        k = run.config.knn_k
        if k:  # non-parametric matching in the features: the baseline of matching in a factorized latent
            matching = NearestNeighbourMatching(run.train, standardised_features(run.train.feats), k)
            run.add_row(f"kNN matching in Fbank (k={k})", "reference", tables=run.table_rows(matching))

    def model(self, run, model):
        config, k, engine = run.config, run.config.knn_k, model.engine
        if not (model.factorial and k and all(other in engine.factors for _, other in config.table_pairs())):
            return
        factorizer = model.factorizer
        rows = {f"{model.display} kNN matching (k={k})": (ModelMatching(engine, run.train, k, model.train_codes),
                                                          {"gate": False})}
        if "decoded" in config.knn_gates and not factorizer.decoders:  # exported before the decoders: fit as training does
            factorizer.decoders = engine.fit_sequence_decoders(run.frames["train"], codes=model.train_codes)
        for name in config.knn_gates:  # beyond kNN-VC: the model's own kept class gates the pool
            decode = name == "decoded"
            gate = InferredClasses(engine, run.frames["train"], run.frames["heldout"], config.knn_gate_smooth,
                                   pool_codes=model.train_codes, decoders=factorizer.decoders if decode else None)
            rows[f"{model.display} kNN matching gated by the model{GATES[name]} (k={k})"] = (
                ModelMatching(engine, run.train, k, model.train_codes, gate=gate), {"gate": True, "decode": decode})
        reference_feats = {}  # the matching rows of one model read each reference once
        for row, (matching, how) in rows.items():
            values = run.add_row(row, "beyond", tables=run.table_rows(matching))
            if matching.gate is not None:  # how often the model's kept class was right, behind those rows
                values["gate_accuracy"] = matching.gate.accuracy()
            if run.pairs and "train" in run.utterances:  # the same conversion, against the real reading
                convert = matching_conversion(factorizer, run.utterances["train"], k=k, cache=reference_feats, **how)
                values["parallel"] = conversion_distortion(factorizer, run.pairs, convert=convert)

    def render(self, summary, row_kinds, config):
        gates = {row: result["gate_accuracy"] for row, result in summary.get("reference", {}).items()
                 if "gate_accuracy" in result}
        if not gates:
            return []
        lines = ["## Matching gates (share of frames whose kept class the model infers right)", "",
                 "The gated matching rows match a frame only among pool frames of its inferred kept class.", "",
                 "| row | kept factor | training pool | scored frames |", "|---|---|---|---|"]
        for row, accuracy in gates.items():
            for factor, shares in accuracy.items():
                lines.append(f"| {row} | {factor} | {fmt(shares['pool'])} | {fmt(shares['scored'])} |")
        return lines + [""]


class Structure(Section):
    """How additive each flow's latent is (variance shares of phone, speaker, their interaction and the
    within-cell rest) and what that costs: the cell-mean oracle row."""

    name = "structure"

    def model(self, run, model):
        engine = model.engine
        if engine.prior is None:  # the flows only
            return
        oracle = CellMeanOracle(engine, run.train, run.num_classes, codes=model.train_codes)
        run.add_row(f"{model.display} oracle (cell means)", "reference", tables=run.table_rows(oracle, True))
        run.results[model.display]["structure"] = structure_table(engine, model.subspaces, run.train, run.num_classes,
                                                                  run.config.leakage_max_train, run.seed)

    def render(self, summary, row_kinds, config):
        structured = {model: result["structure"] for model, result in summary["models"].items() if "structure" in result}
        if not structured:
            return []
        first, second = PAPER_FACTORS
        lines = ["## Latent structure (training codes: shares of each subspace's variance; within-cell variance "
                 "per dimension, 1 for the prior)", "",
                 "An additive latent has no interaction: the shift by class-mean differences lands on the target cell.", "",
                 f"| model | subspace | {first} effect | {second} effect | interaction | within-cell | "
                 "within-cell variance per dim |", "|---|---|---|---|---|---|---|"]
        for model, table in structured.items():
            for subspace, shares in table.items():
                lines.append(f"| {model} | {subspace} | " + " | ".join(
                    fmt(shares[key]) for key in (first, second, "interaction", "within", "within_variance_per_dim")) + " |")
        return lines + [""]


class TSNE(Section):
    """The paper's t-SNE grid: codes of a fixed sample of held-out frames, coloured by phone and by speaker
    (for a factorial flow, the matching subspace); the probes' accuracy closes the report."""

    name = "tsne"

    def start(self, run):
        run.tsne_sample = tsne_sample(run.frames["heldout"], run.encoders, run.config.tsne_classes,
                                      run.config.tsne_per_class, run.seed)
        run.figure = {"latents": {},
                      "sample_labels": {name: run.frames["heldout"].labels[name][run.tsne_sample[name][0]].numpy()
                                        for name in PAPER_FACTORS},
                      "class_names": {name: dict(run.encoders[name].ind2lab) for name in PAPER_FACTORS}}

    @torch.no_grad()
    def model(self, run, model):
        engine, codes = model.engine, {}
        for name in PAPER_FACTORS:
            z = engine.encode(run.frames["heldout"].batch(run.tsne_sample[name][0]).feats)
            if model.factorial and name in engine.factors:
                z = engine.prior.subspace(z, name)  # f-DNF: the matching subspace
            codes[name] = z.cpu().numpy()
        run.figure["latents"][model.display] = codes

    def render(self, summary, row_kinds, config):
        figure = Path(config.eval_folder, "tsne.png").name
        probes = ", ".join(f"{name} {fmt(value)}" for name, value in summary["probe_accuracy"].items())
        return [f"MLP probes on input features, held-out frame accuracy: {probes}.", "",
                f"t-SNE grid: [{figure}]({figure})", ""]


@torch.no_grad()
def structure_table(engine, subspaces, train, num_classes, max_frames, seed):
    """``{subspace: shares}`` of :func:`~speechbrain_fdnf.evaluation.structure.latent_structure` by phone and
    speaker, on a seeded sample of ``max_frames`` training codes."""
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:max_frames]
    codes = engine.encode_all(train.feats[pick])
    first, second = PAPER_FACTORS
    table = {}
    for name, where in subspaces.items():
        shares = latent_structure(codes[:, where], train.labels[first][pick], train.labels[second][pick],
                                  num_classes[first], num_classes[second])
        table[name] = {first: shares["first"], second: shares["second"], "interaction": shares["interaction"],
                       "within": shares["within"], "within_variance_per_dim": shares["within_variance_per_dim"]}
    return table


class SpeakerSubset(Section):
    """The paper's implied setup and utterance-level speaker tables.

    The paper's tables imply probes over about 40 speakers (p(s2|x) = 0.010 with p(s|x) = 0.612 gives
    (1 - 0.612) / (N - 1) = 0.010) and its 39 phones. With ``table_speakers``, the frame tables are
    scored again with probes trained on, and targets drawn among, a seeded subset of that many training
    speakers (the held-out frames of those speakers only). With ``utterance_tables``, whole held-out
    utterances are moved to another speaker and the speaker posterior is the utterance's (its frames' mean
    log-posterior), over all speakers and over the subset; the phone column stays frame-level."""

    name = "subset"

    def start(self, run):
        config, run.subset = run.config, {}
        if config.table_speakers:
            speakers = torch.tensor(sorted(run.candidates["speaker"]))
            chosen = speakers[torch.randperm(len(speakers), generator=torch.Generator().manual_seed(run.seed))]
            chosen = chosen[:config.table_speakers]
            keep = {split: torch.isin(run.frames[split].labels["speaker"], chosen) for split in ("train", "heldout")}
            frames = {split: run.frames[split].restricted(keep[split]) for split in keep}
            train, heldout = frames["train"].all(), frames["heldout"].all()
            probes = {}
            for name in config.label_sets():
                probes[name], _ = load_or_train_probe(
                    Path(config.output_root) / "probes", name, train, heldout, run.num_classes[name],
                    epochs=config.probe_epochs, hidden_size=config.probe_hidden, seed=run.seed)
            candidates = dict(run.candidates, speaker=chosen.tolist())
            cells = {target: existing_cells(train.labels, target, other, run.num_classes[target], run.num_classes[other])
                     for target, other in config.table_pairs()}
            run.subset = {"frames": frames, "probes": probes, "candidates": candidates, "cells": cells}
        # a whole utterance moved to one speaker meets phones that speaker never said: those frames stay
        ceiling = RealFrameCeiling([run.heldout, run.train], run.num_classes, run.seed, keep_missing=True)
        values = self.rows(run, ceiling, restricted=True)
        if values:  # beside the ceiling's frame tables, when that section runs too
            run.reference.setdefault(CEILING, {}).update(values)
            run.row_kinds[CEILING] = "reference"

    def rows(self, run, move, restricted=False):
        config, values = run.config, {}
        if run.subset:
            subset = run.subset
            values["speakers_subset"] = {
                target: posterior_table(move, subset["probes"], subset["frames"]["heldout"], target, other,
                                        subset["candidates"][target], config.num_frames, run.seed,
                                        cells=subset["cells"][target] if restricted else None)
                for target, other in config.table_pairs()}
        if config.utterance_tables and "speaker" in run.candidates:
            values["utterance"] = utterance_table(move, run.probes, run.frames["heldout"], run.candidates["speaker"],
                                                  config.utterance_tables, run.seed)
            if run.subset:
                values["utterance_subset"] = utterance_table(
                    move, run.subset["probes"], run.subset["frames"]["heldout"], run.subset["candidates"]["speaker"],
                    config.utterance_tables, run.seed)
        return values

    def model(self, run, model):
        if run.config.table_speakers or run.config.utterance_tables:
            run.results[model.display].update(self.rows(run, shift_by_class_means(model.engine)))

    def render(self, summary, row_kinds, config):
        rows = {**summary["models"], **summary.get("reference", {})}
        lines = []
        pairs = config.table_pairs()
        chosen = {name: row["speakers_subset"] for name, row in rows.items() if "speakers_subset" in row}
        if chosen:
            lines += [f"## Frame tables over {config.table_speakers} training speakers (the paper's implied setup: "
                      "probes and targets among a seeded subset)", ""]
            for target, other in pairs:
                lines += [f"### {target.capitalize()} manipulation ({other} should stay)", "", *table_header(target, other)]
                # the paper's row once, after the last row it answers (a curve's points stay together)
                last = {paper_name(name): name for name in chosen if paper_row(name, target)}
                for name, tables in chosen.items():
                    lines.append(table_row(name, tables[target]))
                    if last.get(paper_name(name)) == name:
                        paper = paper_row(name, target)
                        lines.append(f"| {paper_name(name)} | | | {paper[0]:+.3f} | | | {paper[1]:+.3f} |")
                lines.append("")
        for key, scope in (("utterance", "all training speakers"), ("utterance_subset", f"{config.table_speakers} training speakers")):
            chosen = {name: row[key] for name, row in rows.items() if key in row}
            if not chosen:
                continue
            lines += [f"## Utterance-level speaker manipulation ({scope}; the speaker posterior of the whole utterance "
                      "from its frames' mean log-posterior, the phone frame by frame)", "",
                      *table_header("speaker", "phone")]
            for name, cell in chosen.items():
                lines.append(table_row(name, cell))
            lines.append("")
        return lines


class Conversion(Section):
    """Whole utterances converted to another speaker through the converter, judged by a speaker encoder trained
    on real speech and by two phone recognizers (:mod:`speechbrain_fdnf.evaluation.conversion`): every model
    with a speaker subspace gets its shift row, ``conversion_model`` every option the converter offers."""

    name = "conversion"

    def model(self, run, model):
        if run.config.conversion_utterances and "speaker" in model.engine.factors:
            run.speaker_models[model.display] = model.factorizer

    def finish(self, run):
        from speechbrain_fdnf.evaluation.conversion import evaluate_conversion  # the judges' packages, only here

        if run.config.conversion_utterances and run.speaker_models and run.utterances:
            run.conversion = evaluate_conversion(run.speaker_models, run.utterances, run.config, run.seed)

    def render(self, summary, row_kinds, config):
        from speechbrain_fdnf.evaluation.conversion import conversion_report

        return conversion_report(summary["conversion"], config) if summary.get("conversion") else []


#: Every section, in the order they run and are reported.
SECTIONS = [PosteriorTables(), Leakage(), Likelihood(), Distortion(), Matching(), Structure(), TSNE(), SpeakerSubset(),
            Conversion()]


def chosen_sections(config):
    """The sections ``config.sections`` names (all of them when it names none), in :data:`SECTIONS` order."""
    known = [section.name for section in SECTIONS]
    unknown = sorted(set(config.sections) - set(known))
    if unknown:
        raise ValueError(f"sections: unknown section(s) {unknown}; known: {known}")
    return [section for section in SECTIONS if not config.sections or section.name in config.sections]
