"""The corpus seam: corpus preparers by name, each writing the same prepared-split contract.

A preparer turns a corpus into ``<prep_folder>/{train,valid,heldout,test}.json`` (read with
:func:`~speechbrain_fdnf.files.read_prepared_split`): id -> entry with ``wav``, sample-accurate
phone segments (``starts``, ``ends``, ``phones39``) and the utterance labels that
:mod:`speechbrain_fdnf.factors` names. The recipes ask for a corpus by name (``corpus:`` in the
yaml, or the default of :func:`corpus_name`) and never call a preparer directly; a new corpus
is one function here and one entry in :data:`CORPORA`.

Authors
 * speechbrain-fdnf developers
"""

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from speechbrain.utils.distributed import run_on_main

from speechbrain_fdnf.corpus.synthesize import CorpusOptions, synthesize_corpus
from speechbrain_fdnf.data.audio import shown
from speechbrain_fdnf.data.layouts import LAYOUTS
from speechbrain_fdnf.data.timit import OPTIONS_FILE, is_directory, prepare_timit
from speechbrain_fdnf.data.transcribed import prepare_transcribed
from speechbrain_fdnf.files import read_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparationOptions:
    """How a corpus is split and checked; the yaml keys of the same names (``hparams/common.yaml``).

    :meth:`of` takes each option from the yaml where it has the key, else from the options the
    prepared folder was made with (so a reuse recipe given ``--data_folder`` prepares again as the
    training run did), else the default below.
    """

    exclude_sa: bool = True
    heldout_per_speaker: int = 2
    valid_per_speaker: int = 1
    test_set: str = "full"
    sample_rate: int = 16000
    on_bad_file: str = "raise"
    # transcribed corpora (LibriSpeech, VCTK, manifests) only
    alignments: str = None
    test_speakers: float = 0.1
    align_rounds: int = 2

    @classmethod
    def of(cls, hparams):
        """The options of ``hparams`` (see above).

        Example
        -------
        >>> PreparationOptions.of({"prep_folder": getfixture("tmp_path"), "test_set": "core"}).test_set
        'core'
        """
        recorded = {}
        if hparams.get("prep_folder"):
            options = read_json(Path(hparams["prep_folder"]) / OPTIONS_FILE, default={}).get("options", {})
            recorded = dict(options, on_bad_file=options.get("on_error", cls.on_bad_file))
        chosen = {}
        for field in fields(cls):
            if field.name in hparams:
                chosen[field.name] = hparams[field.name]
            elif field.name in recorded:
                chosen[field.name] = recorded[field.name]
        return cls(**chosen)

    def prepare(self, data_folder, prep_folder):
        """:func:`~speechbrain_fdnf.data.timit.prepare_timit` with these options, on the main process."""
        kwargs = {key: value for key, value in asdict(self).items() if key not in _TRANSCRIBED_ONLY}
        kwargs["on_error"] = kwargs.pop("on_bad_file")
        run_on_main(prepare_timit, kwargs=dict(data_folder=data_folder, save_folder=prep_folder, **kwargs))
        return Path(prep_folder)

    def prepare_transcribed(self, layout, data_folder, prep_folder):
        """:func:`~speechbrain_fdnf.data.transcribed.prepare_transcribed` of ``layout`` with these options,
        on the main process."""
        kwargs = {key: value for key, value in asdict(self).items() if key not in ("exclude_sa", "test_set")}
        kwargs["on_error"] = kwargs.pop("on_bad_file")
        run_on_main(prepare_transcribed, args=[layout, data_folder, prep_folder], kwargs=kwargs)
        return Path(prep_folder)


_TRANSCRIBED_ONLY = ("alignments", "test_speakers", "align_rounds")


def prepare_timit_corpus(hparams):
    """TIMIT (or any corpus in its layout) at ``data_folder``."""
    folder = Path(hparams["data_folder"])
    if not is_directory(folder):
        raise FileNotFoundError(f"--data_folder {shown(folder)} does not exist (no fallback to the embedded corpus)")
    return PreparationOptions.of(hparams).prepare(folder, hparams["prep_folder"])


def prepare_embedded_corpus(hparams):
    """The embedded eSpeak NG corpus of size ``embedded_corpus_size`` (with ``embedded_corpus_options``
    overriding its :class:`CorpusOptions`) in ``embedded_corpus_folder`` (synthesized on first use,
    reused afterwards), prepared as TIMIT."""
    folder = Path(hparams["embedded_corpus_folder"])
    overrides = dict(hparams.get("embedded_corpus_options") or {})
    unknown = set(overrides) - set(CorpusOptions.__dataclass_fields__)
    if unknown:
        raise ValueError(f"embedded_corpus_options: unknown option(s) {sorted(unknown)}; "
                         f"CorpusOptions has {sorted(CorpusOptions.__dataclass_fields__)}")
    options = CorpusOptions.of_size(hparams.get("embedded_corpus_size", "demo"), **overrides)
    if not (folder / "corpus.json").exists():
        logger.info("No data_folder given: synthesizing the embedded eSpeak NG corpus into %s", folder)
    run_on_main(synthesize_corpus, args=[folder, options])
    return PreparationOptions.of(hparams).prepare(folder, hparams["prep_folder"])


def _transcribed_preparer(layout):
    def prepare(hparams):
        folder = hparams.get("data_folder")
        if not folder:
            raise ValueError(f"corpus {layout} needs --data_folder (the corpus root; a manifest: its file)")
        if not Path(folder).exists():
            raise FileNotFoundError(f"--data_folder {shown(folder)} does not exist")
        return PreparationOptions.of(hparams).prepare_transcribed(layout, folder, hparams["prep_folder"])

    prepare.__doc__ = f"A {layout}-layout corpus at ``data_folder``, force-aligned where it has no alignment files."
    return prepare


#: Corpus preparers by the name the yaml's ``corpus`` takes: ``preparer(hparams) -> prep_folder``.
CORPORA = {
    "timit": prepare_timit_corpus,
    "embedded": prepare_embedded_corpus,
    **{layout: _transcribed_preparer(layout) for layout in LAYOUTS},
}


def corpus_name(hparams):
    """``hparams["corpus"]``; without one, the layout ``prep_folder`` was prepared from (a reuse recipe
    given ``--data_folder`` prepares again as the training run did), else ``"timit"`` when a
    ``data_folder`` is given, else ``"embedded"``.

    Example
    -------
    >>> corpus_name({"data_folder": "/data/TIMIT"}), corpus_name({}), corpus_name({"corpus": "embedded"})
    ('timit', 'embedded', 'embedded')
    """
    recorded = None
    if hparams.get("prep_folder"):
        recorded = read_json(Path(hparams["prep_folder"]) / OPTIONS_FILE, default={}).get("options", {}).get("layout")
    name = hparams.get("corpus") or recorded or ("timit" if hparams.get("data_folder") else "embedded")
    if name not in CORPORA:
        raise ValueError(f"corpus must be one of {sorted(CORPORA)}, got {name!r}")
    return name


def prepare_corpus(hparams):
    """Prepares the yaml's corpus into ``prep_folder`` (skipped when up to date); returns the folder."""
    return CORPORA[corpus_name(hparams)](hparams)
