"""The factor schema: which label sets a frame carries, where each comes from, and how it behaves.

Every layer reads the label sets from here: the data preparation (which key of a prepared
corpus entry holds each label, whether it changes from frame to frame), the engine and the
interface (a frame-level factor is inferred per frame, any other once per utterance), the
evaluation (the table symbols, the paper's two factors) and the recipes (which labels a split
may see for the first time). Adding a label set is one :class:`LabelSet` in :data:`LABEL_SETS`
plus the corpus preparation that writes its key.

Authors
 * speechbrain-fdnf developers
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from speechbrain_fdnf.data.phones import SILENCE, TIMIT39


@dataclass(frozen=True)
class LabelSet:
    """One kind of label every frame carries.

    Attributes
    ----------
    name : str
        The label set's name in yaml files, encoders, tables and the interface (``"phone"``).
    entry_key : str
        The key of a prepared corpus entry that holds it (a list with one value per phone
        segment for a frame-level label, one value for the utterance otherwise).
    frame_level : bool
        Whether it changes from frame to frame (the phone) or is constant over an utterance.
    inventory : tuple of str, optional
        A fixed class list (the 39 phones: a class with no training frame still has an index);
        ``None``: the sorted labels of the training entries.
    symbol : str
        Its letter in the tables' column names (``p(q|x)``).
    new_in_test : bool
        Whether the test split is expected to bring unseen values (TIMIT's test speakers, and
        their dialect regions, are new by design): scored as the unknown class ``-1``.
    """

    name: str
    entry_key: str
    frame_level: bool
    inventory: Optional[Tuple[str, ...]]
    symbol: str
    new_in_test: bool = False

    def classes(self, entries):
        """The class list of this label set for prepared training ``entries`` (id -> entry).

        Example
        -------
        >>> LABEL_SETS["speaker"].classes({"a": {"speaker": "MJS0"}, "b": {"speaker": "FAB0"}})
        ['FAB0', 'MJS0']
        >>> len(LABEL_SETS["phone"].classes({}))
        39
        """
        if self.inventory is not None:
            return list(self.inventory)
        return sorted({entry[self.entry_key] for entry in entries.values()})

    def per_frame(self, entry, segments):
        """The label of each frame of ``entry``, given the phone segment covering each frame.

        Example
        -------
        >>> entry = {"phones39": ["sil", "aa"], "speaker": "MJS0"}
        >>> LABEL_SETS["phone"].per_frame(entry, [0, 1, 1]), LABEL_SETS["speaker"].per_frame(entry, [0, 1])
        (['sil', 'aa', 'aa'], ['MJS0', 'MJS0'])
        """
        value = entry[self.entry_key]
        return [value[index] for index in segments] if self.frame_level else [value] * len(segments)


#: Every label set a frame carries, in a fixed order (encoders, caches and tables follow it).
LABEL_SETS = {
    label_set.name: label_set
    for label_set in (
        LabelSet("phone", "phones39", frame_level=True, inventory=TIMIT39, symbol="q"),
        LabelSet("speaker", "speaker", frame_level=False, inventory=None, symbol="s", new_in_test=True),
        LabelSet("gender", "gender", frame_level=False, inventory=None, symbol="g"),
        LabelSet("dialect", "dialect", frame_level=False, inventory=None, symbol="d", new_in_test=True),
    )
}
#: Their names.
LABELS = tuple(LABEL_SETS)
#: The label sets that change from frame to frame; the others are constant over an utterance.
FRAME_LEVEL_LABELS = tuple(name for name, label_set in LABEL_SETS.items() if label_set.frame_level)
#: The paper's two factors: its t-SNE rows, its two tables, the latent structure table.
PAPER_FACTORS = ("phone", "speaker")
#: The label set whose class :data:`SILENCE` marks frames without speech (``exclude_silence``).
SILENCE_LABEL = "phone"
#: What a split may do with labels that training never saw (``on_unseen_label``).
UNSEEN_LABEL_POLICIES = ("raise", "unknown")

__all__ = ["FRAME_LEVEL_LABELS", "LABELS", "LABEL_SETS", "LabelSet", "PAPER_FACTORS", "SILENCE", "SILENCE_LABEL",
           "UNSEEN_LABEL_POLICIES", "is_frame_level", "symbol", "unseen_allowed"]


def is_frame_level(name):
    """Whether label set ``name`` changes from frame to frame (unknown names are utterance-level).

    Example
    -------
    >>> is_frame_level("phone"), is_frame_level("speaker")
    (True, False)
    """
    label_set = LABEL_SETS.get(name)
    return bool(label_set and label_set.frame_level)


def symbol(name):
    """The letter of label set ``name`` in the tables (its own name where it has none).

    Example
    -------
    >>> symbol("phone"), symbol("speaker"), symbol("emotion")
    ('q', 's', 'emotion')
    """
    label_set = LABEL_SETS.get(name)
    return label_set.symbol if label_set else name


def unseen_allowed(split, policy="raise"):
    """The label sets whose values unseen in training a ``split`` scores as the unknown class ``-1``.

    The test split may bring new values of the label sets marked ``new_in_test``; with
    ``policy="unknown"`` every split may bring new values of any utterance-level label set. Any
    other unseen label is an error naming the utterance.

    Example
    -------
    >>> unseen_allowed("test"), unseen_allowed("heldout"), unseen_allowed("heldout", "unknown")
    (('speaker', 'dialect'), (), ('speaker', 'gender', 'dialect'))
    """
    if policy not in UNSEEN_LABEL_POLICIES:
        raise ValueError(f"on_unseen_label must be one of {list(UNSEEN_LABEL_POLICIES)}, got {policy!r}")
    if policy == "unknown":
        return tuple(name for name, label_set in LABEL_SETS.items() if not label_set.frame_level)
    if split == "test":
        return tuple(name for name, label_set in LABEL_SETS.items() if label_set.new_in_test)
    return ()
