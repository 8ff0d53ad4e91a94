"""A SpeechBrain ``Checkpointer`` that never recovers a half-written checkpoint.

SpeechBrain writes a checkpoint's ``CKPT.yaml`` first and its parameter files
after it, so a run killed while saving leaves a folder that looks complete.
:class:`VerifiedCheckpointer` checks every checkpoint before listing it: the
yaml must parse, every recoverable must have its file, and a file written by
``torch.save`` (a zip archive) must be whole. A checkpoint that fails is
skipped with a warning (and left on disk for inspection), so recovery falls
back to the previous complete one.

Authors
 * speechbrain-fdnf developers
"""

import logging
import zipfile

import yaml
from speechbrain.utils.checkpoints import METAFNAME, PARAMFILE_EXT, Checkpointer

logger = logging.getLogger(__name__)
_ZIP_MAGIC = b"PK\x03\x04"


class VerifiedCheckpointer(Checkpointer):
    """``Checkpointer`` whose listing (hence recovery and deletion) skips incomplete checkpoints.

    Arguments are those of ``speechbrain.utils.checkpoints.Checkpointer``.

    Example
    -------
    >>> import torch
    >>> folder = getfixture("tmp_path")  # pytest's temporary folder
    >>> layer = torch.nn.Linear(2, 2)
    >>> checkpointer = VerifiedCheckpointer(folder, {"layer": layer})
    >>> good = checkpointer.save_checkpoint(name="good")
    >>> broken = checkpointer.save_checkpoint(name="broken")
    >>> data = (broken.path / "layer.ckpt").read_bytes()
    >>> _ = (broken.path / "layer.ckpt").write_bytes(data[: len(data) // 2])  # killed mid-write
    >>> [c.path.name for c in checkpointer.list_checkpoints()]
    ['CKPT+good']
    """

    def list_checkpoints(self):
        """The complete checkpoints of the folder (see the module docstring)."""
        complete = []
        for folder in self._list_checkpoint_dirs():
            problem = self.problem(folder)
            if problem:
                logger.warning("Ignoring checkpoint %s: %s", folder, problem)
                continue
            complete += self._construct_checkpoint_objects([folder])
        return complete

    def problem(self, folder):
        """Why the checkpoint in ``folder`` cannot be trusted, or ``None``."""
        try:
            meta = yaml.safe_load((folder / METAFNAME).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            return f"unreadable {METAFNAME} ({error})"
        if not isinstance(meta, dict):
            return f"{METAFNAME} is empty or not a mapping"
        for name in self.recoverables:
            path = folder / f"{name}{PARAMFILE_EXT}"
            if not path.is_file():
                return f"{path.name} is missing (the run stopped while saving)"
            with open(path, "rb") as handle:
                is_zip = handle.read(4) == _ZIP_MAGIC
            if is_zip and not zipfile.is_zipfile(path):
                return f"{path.name} is truncated (the run stopped while saving)"
        return None
