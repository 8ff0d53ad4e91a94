"""How the reports write an aggregated number (a leaf: every report section imports it, it imports none).

Authors
 * speechbrain-fdnf developers
"""


def fmt(stat, signed=False):
    """``mean`` (``± std`` over several seeds) of an aggregated number.

    Example
    -------
    >>> fmt({"mean": 0.5, "std": 0.0, "values": [0.5]}, signed=True)
    '+0.500'
    >>> fmt({"mean": 0.5, "std": 0.1, "values": [0.4, 0.6]})
    '0.500 ± 0.100'
    """
    text = f"{stat['mean']:+.3f}" if signed else f"{stat['mean']:.3f}"
    return text + (f" ± {stat['std']:.3f}" if len(stat["values"]) > 1 else "")
