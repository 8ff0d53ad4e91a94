"""A page to listen to the judged conversions: ``<eval_folder>/conversions/index.html``.

The conversion section writes the first trials of every row as WAV files and, beside them, each block's
``examples.json`` (:func:`record_example`): the source reading, the converted output, the target's real
reading and the judges' numbers for that trial. :func:`write_page` turns them into one HTML page with
the three players side by side for every trial of every row, the audio copied next to it, so that the
folder plays offline and can be moved as a whole.

Authors
 * speechbrain-fdnf developers
"""

import html
import json
import shutil
from pathlib import Path

from speechbrain_fdnf.files import write_json_atomic

EXAMPLES = "examples.json"
PAGE = "index.html"
#: Each player reports whether its audio loaded (the page test reads these attributes in a headless browser).
_PLAYER = ('<audio controls preload="auto" src="{src}" onloadedmetadata="this.dataset.loaded=\'yes\'" '
           'onerror="this.dataset.loaded=\'no\'"></audio>')


def record_example(folder, example):
    """Adds one trial's ``example`` (a dict: ``row``, ``index``, ``source``, ``converted``, ``target``,
    ``target_reading`` and the judges' numbers) to ``folder/examples.json``; the source and the target's
    reading are copied into ``folder/audio`` so that the page does not depend on the corpus's place."""
    folder = Path(folder)
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    example = dict(example)
    for key in ("source", "target_reading"):
        path = Path(example[key])
        copy = audio / f"{path.parent.name}_{path.name}"
        if not copy.exists():
            shutil.copyfile(path, copy)
        example[key] = str(copy.relative_to(folder.parent))
    example["converted"] = str(Path(example["converted"]).relative_to(folder.parent))
    path = folder / EXAMPLES
    examples = json.loads(path.read_text()) if path.exists() else []
    examples = [e for e in examples if (e["row"], e["index"]) != (example["row"], example["index"])] + [example]
    write_json_atomic(path, examples)


def number(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def write_page(root, title="Judged conversions"):
    """Writes ``root/index.html`` from every ``root/<block>/examples.json``; returns its path.

    Example
    -------
    >>> import soundfile, numpy as np
    >>> root = getfixture("tmp_path")
    >>> for name in ("src.wav", "tgt.wav", "out.wav"):
    ...     soundfile.write(str(root / name), np.zeros(1600), 16000)
    >>> record_example(root / "test_speakers", {"row": "copy", "index": 0, "source": root / "src.wav",
    ...     "converted": root / "out.wav", "target": "FABC0", "target_reading": root / "tgt.wav",
    ...     "cos_target": 0.5, "cos_source": 0.9, "verified": False})
    >>> page = write_page(root)
    >>> text = page.read_text()
    >>> text.count("<audio"), "test_speakers/audio/" in text
    (3, True)
    """
    root = Path(root)
    sections = []
    for block_file in sorted(root.glob(f"*/{EXAMPLES}")):
        examples = json.loads(block_file.read_text())
        block = block_file.parent.name.replace("_", " ")
        rows = {}
        for example in sorted(examples, key=lambda e: e["index"]):
            rows.setdefault(example["row"], []).append(example)
        parts = [f"<h2>{html.escape(block.capitalize())}</h2>"]
        for row, trials in rows.items():
            parts.append(f"<h3>{html.escape(row)}</h3><table><tr><th>trial</th><th>source</th><th>converted</th>"
                         "<th>target's real reading</th><th>judges</th></tr>")
            for trial in trials:
                verdict = "verified as the target" if trial.get("verified") else "not verified"
                judges = (f"cos to target {number(trial.get('cos_target'))}, to source {number(trial.get('cos_source'))}"
                          f" ({verdict})")
                if trial.get("f0_gap") is not None:
                    judges += f"; F0 gap {number(trial['f0_gap'], 1)} semitones"
                parts.append(
                    f"<tr><td>{trial['index']}: {html.escape(Path(trial['source']).name)} &rarr; "
                    f"{html.escape(trial['target'])}{' (cross-gender)' if trial.get('same_gender') is False else ''}</td>"
                    + "".join(f"<td>{_PLAYER.format(src=html.escape(trial[key]))}</td>"
                              for key in ("source", "converted", "target_reading"))
                    + f"<td>{html.escape(judges)}</td></tr>")
            parts.append("</table>")
        sections.append("\n".join(parts))
    body = "\n".join(sections) or "<p>No conversions were written (conversion_examples: False?).</p>"
    page = root / PAGE
    page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:middle;font-size:0.9em}} audio{{width:220px}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>Every row of the report's conversion section: the source reading, the converted utterance and a real reading by
the target, with what the speaker encoder (Resemblyzer) said of the conversion. Plays offline: the audio is in this
folder.</p>
{body}
</body></html>
""", encoding="utf-8")
    return page


__all__ = ["record_example", "write_page"]
