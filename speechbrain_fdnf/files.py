"""Files every layer writes or reads the same way: atomic writes, prepared splits, the frame hop.

* :func:`atomic_write`: a file appears whole or not at all (a killed run never leaves half a file);
* :func:`write_json_atomic`, :func:`read_json`;
* :func:`read_prepared_split`: the prepared-split contract (``<prep_folder>/<split>.json``: id ->
  entry with ``wav``, phone segments and the labels of :mod:`speechbrain_fdnf.factors`);
* :func:`hop_samples`: the frame shift of a feature extractor, in samples.

Authors
 * speechbrain-fdnf developers
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path):
    """Yields a temporary path beside ``path``; renamed onto ``path`` when the block ends without error.

    On an error (or a kill) the temporary file is removed and ``path`` is left as it was.

    Example
    -------
    >>> path = getfixture("tmp_path") / "out.txt"
    >>> with atomic_write(path) as tmp:
    ...     _ = tmp.write_text("whole")
    >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('whole', ['out.txt'])
    >>> oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # a plain new file's mode, not mkstemp's 0600
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it a plain new file's mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path, data, indent=1):
    """Writes ``data`` as JSON through :func:`atomic_write`."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent))


def read_json(path, default=None):
    """The JSON in ``path``; ``default`` where the file does not exist (an error when ``default`` is None)."""
    path = Path(path)
    if default is not None and not path.exists():
        return default
    return json.loads(path.read_text())


#: The splits every corpus preparer writes (:mod:`speechbrain_fdnf.data.corpora`).
PREPARED_SPLITS = ("train", "valid", "heldout", "test")


def prepared_split_path(prep_folder, split):
    """``<prep_folder>/<split>.json``."""
    return Path(prep_folder) / f"{split}.json"


def read_prepared_split(prep_folder, split):
    """The entries (id -> entry) of one prepared split; a missing one is a ``FileNotFoundError`` saying what to do.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> write_json_atomic(folder / "train.json", {"u1": {"speaker": "MJS0"}})
    >>> read_prepared_split(folder, "train")
    {'u1': {'speaker': 'MJS0'}}
    >>> read_prepared_split(folder, "test")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: ... has no test.json: prepare the corpus first (the training recipe does) or give --data_folder
    """
    path = prepared_split_path(prep_folder, split)
    if not path.exists():
        raise FileNotFoundError(f"{Path(prep_folder)} has no {split}.json: prepare the corpus first "
                                "(the training recipe does) or give --data_folder")
    return json.loads(path.read_text())


def hop_samples(compute_features):
    """The frame shift, in samples, of a SpeechBrain ``Fbank`` (frame ``t`` is centred on sample ``t * hop``).

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> hop_samples(Fbank(sample_rate=16000, hop_length=10))
    160
    """
    return int(compute_features.compute_STFT.hop_length)
