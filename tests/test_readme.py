"""The README's command sequence, typed as printed, works in a fresh shell (tiny settings)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- readme-sequence:"
pytestmark = pytest.mark.slow

# Defaults a fresh checkout ships, made tiny in the test's copy; the README's commands stay as printed.
TINY = {
    "common.yaml": {"embedded_corpus_size": "small", "number_of_epochs": "1", "num_blocks": "2",
                    "hidden_size": "32", "batch_size": "256"},
    "evaluate.yaml": {"probe_epochs": "1", "num_frames": "200", "tsne_per_class": "10",
                      "leakage_max_train": "1000", "table_speakers": "3", "utterance_tables": "4",
                      "conversion_utterances": "2", "phone_recognizer_overrides": "{number_of_epochs: 1}"},
    "phone_tagger.yaml": {"number_of_epochs": "1", "hidden_size": "16", "cnn_channels": "2"},
}


def readme_sequence():
    """The lines of the bash block that follows the marker in README.md."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text[text.index(MARKER):], flags=re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def tiny_copy(folder):
    """hparams/ and recipes/ with tiny defaults, and the project's .venv, in ``folder``."""
    for name in ("hparams", "recipes"):
        shutil.copytree(ROOT / name, folder / name)
    for yaml_name, values in TINY.items():
        path = folder / "hparams" / yaml_name
        text = path.read_text()
        for key, value in values.items():
            text, count = re.subn(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.MULTILINE)
            assert count == 1, f"{yaml_name} has no single top-level {key}"
        path.write_text(text)
    (folder / ".venv").symlink_to(ROOT / ".venv")


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "activate").exists(), reason="make install creates .venv")
def test_the_readme_sequence_runs_in_a_clean_shell(tmp_path):
    lines = readme_sequence()
    assert lines[0].startswith("source .venv/bin/activate")
    assert any("recipes/TIMIT/train_fdnf.py hparams/fdnf.yaml" in line for line in lines)
    tiny_copy(tmp_path)
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    # a clean shell: no inherited virtual environment, PYTHONPATH or PATH additions
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, "\n".join(line for line in output.splitlines() if "it/s" not in line)[-4000:]
    assert (tmp_path / "results/evaluation/results.md").read_text().startswith("# f-DNF evaluation")
    assert "['phone', 'speaker']" in result.stdout  # the interface loaded the trained f-DNF
    assert (tmp_path / "results/fdnf/1234/inference/phone_tagger.ckpt").is_file()  # the tagger went into its folder
