"""The page to listen to judged conversions: written from the examples, and every player loads its audio in a
real browser (headless Chromium; Debian's chromium, which .ci/run installs)."""

import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from speechbrain_fdnf.evaluation.listening import record_example, write_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def tone(path, hz, seconds=0.5, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * hz * t), rate)
    return path


@pytest.fixture()
def page(tmp_path):
    corpus, root = tmp_path / "corpus" / "FABC0", tmp_path / "evaluation" / "conversions"
    corpus.mkdir(parents=True)
    for row in ("copy-synthesis (gain path, no change)", "f-DNF cells (shrink 5)"):
        for index in range(2):
            folder = root / "test_speakers" / row.split()[0]
            folder.mkdir(parents=True, exist_ok=True)
            record_example(root / "test_speakers", {
                "row": row, "index": index, "source": tone(corpus / f"SX{index}.WAV", 200 + index),
                "converted": tone(folder / f"{index}_FABC0_to_MXYZ0.wav", 300), "target": "MXYZ0",
                "target_reading": tone(corpus / f"SI{index}.WAV", 150), "cos_target": 0.61, "cos_source": 0.8,
                "verified": index == 1, "same_gender": False, "f0_gap": 4.2})
    return write_page(root)


def test_the_page_lists_every_trial_with_three_players_and_the_judges(page):
    text = page.read_text()
    assert text.count("<audio") == 2 * 2 * 3  # two rows, two trials, three players
    assert "f-DNF cells (shrink 5)" in text and "cos to target 0.610" in text and "(cross-gender)" in text
    assert "verified as the target" in text and "not verified" in text
    for src in re.findall(r'src="([^"]+)"', text):  # relative paths inside the folder: it plays offline
        assert not src.startswith("/") and (page.parent / src).is_file(), src
    shutil.rmtree(page.parent.parent.parent / "corpus")  # the page no longer needs the corpus
    assert all((page.parent / src).is_file() for src in re.findall(r'src="([^"]+)"', text))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (.ci/run installs Debian's chromium)")
def test_every_player_loads_its_audio_in_a_headless_browser(page, tmp_path):
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
              "--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=10000",
              f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    players = re.findall(r"<audio[^>]*>", dom)
    assert len(players) == 12, dom[:2000]
    assert all('data-loaded="yes"' in player for player in players), [p for p in players if "yes" not in p]
    shot = tmp_path / "page.png"
    subprocess.run([*common, "--window-size=1280,900", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
