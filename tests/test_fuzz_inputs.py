"""Property-based fuzzing of every entry point that takes audio (hypothesis).

Each example builds one input (a file at any rate and channel count, or a waveform tensor or array of
any dtype) from a real utterance, noise, silence or nothing, and spoils it or not (NaN, Inf, clipping,
DC, beyond full scale, cut to a few samples). Every call must either return a finite result of the
documented shape or raise the project's own :class:`~speechbrain_fdnf.validation.InputError` with one
line that names the input; an input without speech or with non-finite samples must be refused.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speechbrain_fdnf.convert import MANIPULATIONS, convert
from speechbrain_fdnf.inference import SpeechFactorizer
from speechbrain_fdnf.validation import InputError, InputWarning

RATE = 16000
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: How many examples each fuzz test tried (reported by test_examples_were_tried).
TRIED = {}
#: How many calls were refused (InputError) and accepted (a finite result).
OUTCOMES = {}


@pytest.fixture(scope="module", autouse=True)
def _no_unimportable_lazy_modules():
    """Hypothesis reads ``__file__`` of every module in ``sys.modules``; SpeechBrain registers lazy modules for
    optional integrations (k2, ...) whose import fails when touched: those that cannot import are dropped."""
    for name, module in list(sys.modules.items()):
        if type(module).__name__ in ("LazyModule", "DeprecatedModuleRedirect"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    getattr(module, "__file__", None)
            except ImportError:
                del sys.modules[name]


@pytest.fixture(scope="module")
def flow(trained):
    return SpeechFactorizer.from_hparams(source=trained[0])


@pytest.fixture(scope="module")
def speech(trained):
    """Real speech of two training speakers: ``{speaker: waveform}`` (several utterances joined)."""
    entries = json.loads((trained[1] / "train.json").read_text()).values()
    joined = {}
    for entry in sorted(entries, key=lambda e: e["wav"]):
        samples, _ = soundfile.read(entry["wav"], dtype="float32")
        joined.setdefault(entry["speaker"], []).append(samples)
    return {speaker: np.concatenate(parts) for speaker, parts in sorted(joined.items())[:2]}


CONTENT = st.sampled_from(["speech", "speech", "speech", "noise", "silence"])
SPOIL = st.sampled_from(["none", "none", "none", "nan", "inf", "clip", "dc", "loud", "tiny"])
DTYPE = st.sampled_from(["float32", "float64", "float16", "int16", "int32"])


def make_samples(speech, content, seconds, spoil, rng):
    """A float64 waveform at 16 kHz, and whether it must be refused: ``True`` (no speech, not finite, beyond
    full scale, shorter than a window), ``False`` (real speech or noise, whole), ``None`` (either: e.g. a
    constant offset, which a detector may or may not take for speech)."""
    count = int(seconds * RATE)
    if content == "speech":
        source = speech[sorted(speech)[rng.integers(len(speech))]]
        samples = np.resize(source, count).astype(np.float64) if count else np.zeros(0)
    elif content == "noise":
        samples = 0.1 * rng.standard_normal(count)
    else:
        samples = np.zeros(count)
    if spoil in ("nan", "inf") and count:
        samples[rng.integers(count)] = np.nan if spoil == "nan" else np.inf
    elif spoil == "clip":
        samples = np.clip(samples * 30, -1, 1)
    elif spoil == "dc":
        samples = samples + 0.3
    elif spoil == "loud":
        samples = samples * 30000.0
    elif spoil == "tiny":
        samples = samples[: int(rng.integers(0, 400))]
    if len(samples) < 400 or not np.isfinite(samples).all() or not np.any(samples):
        return samples, True
    if np.abs(samples).max() > 2.0:
        return samples, True
    return samples, None if (spoil == "dc" and content == "silence") else False


def as_dtype(samples, dtype):
    """The waveform in ``dtype`` (integers at their full scale; non-finite values stay float)."""
    if dtype.startswith("int"):
        if not np.isfinite(samples).all():
            return samples.astype(np.float32)
        scale = {"int16": 2 ** 15, "int32": 2 ** 31}[dtype]
        return np.clip(samples * scale, -scale, scale - 1).astype(dtype)
    return samples.astype(dtype)


def check_outcome(call, must_refuse, name):
    """Runs ``call``: a finite result, or an InputError of one line naming ``name``; returns the result."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            result = call()
    except InputError as error:
        message = str(error)
        assert "\n" not in message and name in message, message
        assert must_refuse is not False, f"refused a whole input of speech: {message}"
        OUTCOMES["refused"] = OUTCOMES.get("refused", 0) + 1
        return None
    OUTCOMES["accepted"] = OUTCOMES.get("accepted", 0) + 1
    assert must_refuse is not True, f"accepted an input that must be refused ({name})"
    values = result.values() if isinstance(result, dict) else result if isinstance(result, tuple) else [result]
    for value in values:
        if torch.is_tensor(value) and value.is_floating_point():
            assert torch.isfinite(value).all(), f"non-finite output for {name}"
    return result


def count(test):
    TRIED[test] = TRIED.get(test, 0) + 1


@FUZZ
@given(content=CONTENT, seconds=st.floats(0, 10), spoil=SPOIL, dtype=DTYPE, seed=st.integers(0, 2 ** 16),
       method=st.sampled_from(["features", "encode", "factor_embedding", "manipulate", "enrol", "analysed"]))
def test_waveforms_of_any_dtype(flow, speech, content, seconds, spoil, dtype, seed, method):
    count("waveforms")
    rng = np.random.default_rng(seed)
    samples, must_refuse = make_samples(speech, content, seconds, spoil, rng)
    wav = as_dtype(samples, dtype)
    if dtype.startswith("int") and np.isfinite(samples).all() and len(wav) >= 400:
        # integers saturate (too loud is clipped, not beyond full scale); quantised to zero is silence
        must_refuse = True if not np.any(wav) else (None if spoil == "dc" and content == "silence" else False)
    tensor_or_array = torch.from_numpy(wav) if rng.integers(2) else wav
    calls = {
        "features": lambda: flow.features(tensor_or_array),
        "encode": lambda: flow.encode(tensor_or_array),
        "factor_embedding": lambda: flow.factor_embedding(tensor_or_array, "speaker"),
        "manipulate": lambda: flow.manipulate(tensor_or_array, "speaker", flow.labels("speaker")[0]),
        "enrol": lambda: flow.enrol([tensor_or_array], "speaker"),
        "analysed": lambda: flow.analysed(tensor_or_array).pool,
    }
    if method == "enrol" and not must_refuse:  # an enrolment set needs 2 s of speech (pauses do not count)
        must_refuse = True if len(wav) < 2 * RATE else None
    result = check_outcome(calls[method], must_refuse, "reference 1" if method == "enrol" else "waveform")
    if result is not None and method in ("features", "manipulate", "analysed"):
        assert result.dim() == 2 and result.shape[1] == flow.hparams.input_dim


@FUZZ
@given(content=CONTENT, seconds=st.floats(0, 6), spoil=SPOIL, rate=st.sampled_from([8000, 11025, 16000, 22050, 44100,
                                                                                        48000]),
       channels=st.integers(1, 3), subtype=st.sampled_from(["PCM_16", "FLOAT"]), seed=st.integers(0, 2 ** 16))
def test_files_of_any_rate_and_channel_count(flow, speech, tmp_path_factory, content, seconds, spoil, rate, channels,
                                             subtype, seed):
    count("files")
    rng = np.random.default_rng(seed)
    samples, must_refuse = make_samples(speech, content, seconds, spoil, rng)
    if rate != RATE and len(samples) and np.isfinite(samples).all():
        samples = torchaudio.functional.resample(torch.from_numpy(samples), RATE, rate).numpy()
    if subtype == "PCM_16" and (not np.isfinite(samples).all() or spoil == "loud"):
        subtype = "FLOAT"  # integer files hold neither NaN nor samples beyond full scale
    path = Path(tmp_path_factory.mktemp("fuzz")) / f"in_{rate}_{channels}.wav"
    soundfile.write(str(path), np.repeat(samples[:, None], channels, axis=1), rate, subtype=subtype)
    if len(samples) == 0 or len(samples) * RATE // rate < 400 or not np.any(soundfile.read(str(path))[0]):
        must_refuse = True
    elif must_refuse is False and rate < RATE:
        must_refuse = None  # a few hundred samples upsampled may fall short of a window, or of speech
    check_outcome(lambda: flow.encode(path), must_refuse, str(path))


@FUZZ
@given(lengths=st.lists(st.floats(0, 4), min_size=0, max_size=4), spoiled=st.integers(-1, 3), spoil=SPOIL,
       seed=st.integers(0, 2 ** 16))
def test_batches_with_ragged_lengths(flow, speech, lengths, spoiled, spoil, seed):
    count("batches")
    rng = np.random.default_rng(seed)
    items, refuse = [], False
    for index, seconds in enumerate(lengths):
        samples, must_refuse = make_samples(speech, "speech", seconds, spoil if index == spoiled else "none", rng)
        items.append(samples)
        refuse = True if must_refuse or refuse is True else (None if must_refuse is None or refuse is None else False)
    longest = max([len(item) for item in items], default=0)
    if not items or longest == 0:
        with pytest.raises(InputError):
            flow.encode_batch(torch.zeros(len(items), longest), torch.ones(len(items)) if items else None)
        return
    batch = torch.zeros(len(items), longest, dtype=torch.float64)
    for index, item in enumerate(items):
        batch[index, :len(item)] = torch.from_numpy(item)
    lens = torch.tensor([len(item) / longest for item in items])
    if (lens == 0).any():
        with pytest.raises(InputError, match="wav_lens"):
            flow.encode_batch(batch, lens)
        return
    result = check_outcome(lambda: flow.encode_batch(batch, lens), refuse, "batch item")
    if result is not None:
        codes, frames = result
        assert codes["z"].shape[0] == len(items) and len(frames) == len(items)


@FUZZ
@given(manipulation=st.sampled_from([m for m in MANIPULATIONS if m != "auto"]), source_seconds=st.floats(0, 5),
       source_spoil=SPOIL, reference_seconds=st.lists(st.floats(0, 4), min_size=0, max_size=3),
       reference_content=CONTENT, seed=st.integers(0, 2 ** 16))
def test_the_converter(flow, speech, manipulation, source_seconds, source_spoil, reference_seconds, reference_content,
                       seed):
    count("converter")
    rng = np.random.default_rng(seed)
    wav, refuse = make_samples(speech, "speech", source_seconds, source_spoil, rng)
    references = []
    needs_audio = manipulation != "shift"
    for seconds in reference_seconds:
        samples, must_refuse = make_samples(speech, reference_content, seconds, "none", rng)
        references.append(torch.from_numpy(samples).float())
        if needs_audio:
            refuse = True if must_refuse or refuse else refuse
    if needs_audio and not refuse:  # 2 s of speech in all (pauses do not count)
        refuse = True if not references or sum(reference_seconds) < 2.0 else None
    target = flow.labels("speaker")[0]

    def call():
        return convert(flow, torch.from_numpy(wav).float(), "speaker", target=None if needs_audio else target,
                       references=references if needs_audio else None, manipulation=manipulation)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            out = call()
    except InputError as error:
        assert "\n" not in str(error)
        assert refuse is not False, f"{manipulation} refused good input: {error}"
        return
    except ValueError as error:  # only the documented refusal: audio manipulations without references
        assert needs_audio and not references, error
        return
    assert refuse is not True, f"{manipulation} accepted an input that must be refused"
    assert out.dim() == 1 and len(out) == len(wav) and torch.isfinite(out).all()


def test_examples_were_tried():
    """The fuzz tests above ran their examples (hypothesis counts; this reports them with -s)."""
    print(f"fuzz examples tried: {TRIED}, interface calls: {OUTCOMES}")
    assert all(value >= 30 for value in TRIED.values()) and len(TRIED) == 4, TRIED
