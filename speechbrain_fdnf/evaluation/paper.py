"""The paper's numbers (Sun et al., ICASSP 2021, TIMIT), which the reports print beside the rows they answer.

Each manipulation row is (δ of the changed factor, δ of the kept one) in the paper's two tables: phone
manipulation (``phone``: δ(q2), δ(s)) and speaker manipulation (``speaker``: δ(s2), δ(q)). The paper's DNF
row of each table is the DNF trained with that table's labels (phone labels for phone manipulation,
speaker labels for speaker manipulation). Its frames carry p(q|x) = 0.520 and p(s|x) = 0.612 (about 40
speakers: p(s2|x) = 0.010 = (1 - 0.612) / (N - 1)).

Authors
 * speechbrain-fdnf developers
"""

#: The paper's manipulation rows: model -> table -> (δ target, δ other).
PAPER_ROWS = {
    "VAE": {"phone": (0.299, -0.158), "speaker": (0.293, -0.011)},
    "NF": {"phone": (0.397, -0.123), "speaker": (0.425, -0.036)},
    "DNF": {"phone": (0.606, -0.277), "speaker": (0.690, -0.171)},
    "f-DNF": {"phone": (0.623, -0.076), "speaker": (0.700, -0.017)},
}
#: The paper's frames: the true phone's and the true speaker's mean posterior.
PAPER_PROBES = {"phone": 0.520, "speaker": 0.612}
#: The label each single-label DNF row of this project carries, by the start of its display name.
_DNF_LABEL = {"Phone DNF": "phone", "Speaker DNF": "speaker"}


def paper_row(display, table):
    """The paper's row that answers model ``display`` in ``table`` (``phone`` or ``speaker``), or ``None``.

    A display name is matched by what comes before its first comma (``"NF, 6 epochs"`` is the NF); a
    single-label DNF is answered only in the table of its own label, as the paper's DNF rows are.

    Example
    -------
    >>> paper_row("NF, converged", "speaker")
    (0.425, -0.036)
    >>> paper_row("Phone DNF", "phone"), paper_row("Phone DNF", "speaker")
    ((0.606, -0.277), None)
    >>> paper_row("f-DNF + pairs (beyond the paper)", "phone") is None
    True
    """
    model = display.split(",")[0].strip()
    if model in _DNF_LABEL:
        return PAPER_ROWS["DNF"][table] if _DNF_LABEL[model] == table else None
    return PAPER_ROWS.get(model, {}).get(table)


def paper_name(display):
    """How a report names the paper's row beside ``display`` (``the paper's DNF (TIMIT)``)."""
    model = display.split(",")[0].strip()
    return f"the paper's {'DNF' if model in _DNF_LABEL else model} (TIMIT)"
