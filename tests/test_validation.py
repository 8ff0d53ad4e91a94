"""The one audio check of every entry point: refusals name the input and the measured cause, weak inputs warn
once, and the fallback detector works without webrtcvad."""

import math
import warnings

import numpy as np
import pytest
import soundfile
import torch

from conftest import without_package
from speechbrain_fdnf.convert import main as convert_main
from speechbrain_fdnf import validation
from speechbrain_fdnf.inference import SpeechFactorizer
from speechbrain_fdnf.validation import AudioCheck, InputError, InputWarning, as_waveform

CHECK = AudioCheck(sample_rate=16000)


def voiced(seconds, rate=16000, level=0.3):
    """A voiced, syllable-modulated tone: what a detector takes for speech."""
    t = torch.arange(int(seconds * rate)) / rate
    return level * torch.sin(2 * math.pi * 140 * t) * (1 + torch.sin(2 * math.pi * 3 * t)) / 2


@pytest.mark.parametrize("wav, message", [
    (torch.zeros(0), "x.wav: empty waveform (0 samples)"),
    (torch.zeros(100), "x.wav: 100 samples (0.01 s) is shorter than one analysis window (400 samples)"),
    (torch.cat([voiced(1.0), torch.tensor([float("nan")] * 3)]), "x.wav: 3 of 16003 samples are NaN or Inf"),
    (voiced(1.0) * 1000, "x.wav: peak 300 is beyond full scale"),
    (torch.zeros(32000), "x.wav: no speech found (0.00 s of speech in 2.00 s of audio)"),
    (torch.zeros(2, 16000), "x.wav: a waveform of shape (2, 16000), expected 1-D samples"),
    (np.zeros(100, dtype=np.complex64), "x.wav: samples of type complex64"),
])
def test_each_refusal_names_the_input_and_the_measured_cause(wav, message):
    with pytest.raises(InputError) as error:
        CHECK.waveform(wav, "x.wav")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_weak_inputs_warn_and_pass():
    clipped = (voiced(2.0) * 10).clamp(-1, 1)
    with pytest.warns(InputWarning, match=r"x.wav: \d+\.\d% of samples are clipped"):
        CHECK.waveform(clipped, "x.wav")
    with pytest.warns(InputWarning, match=r"x.wav: DC offset \+0.200"):
        CHECK.waveform(voiced(2.0) + 0.2, "x.wav")
    with pytest.warns(InputWarning, match=r"only 0.\d\d s of speech in 2.00 s"):
        CHECK.waveform(torch.cat([torch.zeros(28000), voiced(0.25)]), "x.wav")


def test_a_corpus_of_weak_files_warns_once_and_an_error_still_lets_the_warnings_out():
    """Many clipped files read in one loop give one warning that counts them and names the first; other warnings
    pass as they were; a file refused half-way raises its error, and the earlier files' warning is still given."""
    clipped = (voiced(1.0) * 10).clamp(-1, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with validation.summarised_warnings("training utterances", shown=2):
            for index in range(5):
                CHECK.waveform(clipped, f"u{index}.wav")
            warnings.warn("not about the input", DeprecationWarning)
    weak = [str(item.message) for item in caught if item.category is InputWarning]
    assert len(weak) == 1 and weak[0].startswith("training utterances: 5 inputs warned, e.g. u0.wav: ")
    assert "; u1.wav: " in weak[0] and "u2.wav" not in weak[0] and weak[0].endswith("(and 3 more)")
    assert [str(item.message) for item in caught if item.category is DeprecationWarning] == ["not about the input"]
    with warnings.catch_warnings(record=True) as caught, pytest.raises(InputError, match="bad.wav: empty"):
        warnings.simplefilter("always")
        with validation.summarised_warnings("training utterances"):
            CHECK.waveform(clipped, "u0.wav")
            CHECK.waveform(torch.zeros(0), "bad.wav")
    assert [str(item.message) for item in caught] == [
        "training utterances: 1 input warned, e.g. u0.wav: " + str(weak[0]).split("u0.wav: ")[1].split(";")[0]]


def test_enrolment_sets_need_their_speech():
    with pytest.raises(InputError, match=r"enrolment \(a, b\): 1.50 s of speech, at least 2.00 s needed"):
        CHECK.enrolment([1.0, 0.5], ["a", "b"])
    with pytest.warns(InputWarning, match=r"enrolment \(a\): only 3.00 s of speech"):
        assert CHECK.enrolment([3.0], ["a"]) == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CHECK.enrolment([3.0, 3.0], ["a", "b"]) == 6.0


def test_integer_samples_are_scaled_to_full_scale():
    assert as_waveform(np.array([-32768, 16384], dtype=np.int16), "x").tolist() == [-1.0, 0.5]
    assert as_waveform(torch.tensor([0, 255], dtype=torch.uint8), "x").tolist() == [-1.0, 127 / 128]


def test_without_webrtcvad_frame_energy_detects_speech(monkeypatch):
    without_package(monkeypatch, "webrtcvad")
    validation._webrtcvad.cache_clear()
    try:
        assert validation.webrtc_detector(2) is None
        assert CHECK.speech(voiced(1.0)) > 0.8
        assert CHECK.speech(torch.zeros(16000)) == 0.0
        with pytest.raises(InputError, match="no speech found"):
            CHECK.waveform(torch.zeros(16000), "x.wav")
    finally:
        validation._webrtcvad.cache_clear()  # imported again once the package is back


@pytest.mark.slow
def test_the_converter_refuses_a_silent_or_short_enrolment_and_warns_once(trained, tmp_path, capsys):
    model = str(trained[0])
    factorizer = SpeechFactorizer.from_hparams(source=model)
    speaker = factorizer.labels("speaker")[0]
    wavs = sorted(trained[1].parent.glob("embedded_corpus_small/TRAIN/DR*/*/S*.WAV"))
    silence, short = tmp_path / "silence.wav", tmp_path / "short.wav"
    soundfile.write(str(silence), np.zeros(48000, dtype=np.float32), 16000)
    samples, rate = soundfile.read(str(wavs[0]), dtype="float32")
    soundfile.write(str(short), samples[:8000], rate)
    out = str(tmp_path / "out.wav")
    for manipulation in ("cells", "select"):
        assert convert_main(["--model", model, "--wav", str(wavs[1]), "--enrol", str(silence), "--manipulation",
                             manipulation, "--out", out]) == 2
        assert f"error: {silence}: no speech found (0.00 s of speech in 3.00 s of audio)" in capsys.readouterr().err
    assert convert_main(["--model", model, "--wav", str(wavs[1]), "--enrol", str(short), "--out", out]) == 2
    assert f"error: enrolment ({short}): 0." in capsys.readouterr().err
    # lowered knowingly, the same enrolment converts, with one warning that it is weak
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as a user's interpreter shows warnings
        assert convert_main(["--model", model, "--wav", str(wavs[1]), "--enrol", str(short), "--min-enrol-speech",
                             "0.1", "--out", out]) == 0
    weak = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    assert len([message for message in weak if message.startswith(f"enrolment ({short}): only")]) == 1, weak
    assert len(weak) == len(set(weak))  # each weak input once, though enrolment and conversion both read it
    nan = tmp_path / "nan.wav"
    samples[100:110] = np.nan
    soundfile.write(str(nan), samples, rate, subtype="FLOAT")
    assert convert_main(["--model", model, "--wav", str(nan), "--speaker", speaker, "--out", out]) == 2
    assert f"error: {nan}: 10 of {len(samples)} samples are NaN or Inf" in capsys.readouterr().err
