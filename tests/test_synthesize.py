"""The embedded corpus generator: TIMIT's design, distinct voices, determinism, resume, coverage."""

import json
from collections import Counter, defaultdict

import numpy as np
import pytest
import soundfile
import torch
import torchaudio
from conftest import first_utterance

from speechbrain_fdnf.corpus import synthesize
from speechbrain_fdnf.corpus.espeak import ESpeak
from speechbrain_fdnf.corpus.noise_shape import OBSTRUENTS
from speechbrain_fdnf.corpus.speakers import TIMIT_DIALECT_COUNTS, FormantShape, SpeakerProfile, read_speaker_table
from speechbrain_fdnf.corpus.synthesize import (
    CorpusOptions,
    phone_segments,
    plan_corpus,
    plan_reading,
    read_entry,
    speaker_voices,
    synthesize_corpus,
)
from speechbrain_fdnf.data.phones import FOLD_61_TO_39, TIMIT39, espeak_to_timit


def test_corpus_has_timit_layout(corpus):
    speakers = sorted(p.name for p in corpus.glob("TRAIN/DR*/*"))
    assert len(speakers) == 6 and all(s[0] in "FM" and len(s) == 5 for s in speakers)
    assert len(list(corpus.glob("TEST/DR*/*"))) == 2
    wav = first_utterance(corpus)
    info = soundfile.info(str(wav))
    assert info.samplerate == 16000 and info.channels == 1
    assert wav.with_suffix(".PHN").exists() and wav.with_suffix(".TXT").exists()
    lines = [line.split() for line in wav.with_suffix(".PHN").read_text().splitlines()]
    assert int(lines[0][0]) == 0 and int(lines[-1][1]) == info.frames  # covers the audio
    assert all(int(a[1]) == int(b[0]) for a, b in zip(lines, lines[1:]))  # contiguous
    assert lines[-1][2] == "h#"  # eSpeak ends in a pause; it may start speaking at sample 0
    assert all(line[2] != "h#" for line in lines[1:-1])  # inside an utterance pauses are "pau"
    names = sorted(p.stem for p in wav.parent.glob("*.WAV"))
    assert names[:2] == ["SA1", "SA2"] and Counter(n[:2] for n in names) == {"SA": 2, "SX": 4, "SI": 2}


def test_speaker_table_matches_the_folders(corpus):
    table = read_speaker_table(corpus / "SPKRINFO.TXT")
    folders = {p.name: p for p in corpus.glob("*/DR*/*")}
    assert set(table) == set(folders)
    for speaker, profile in table.items():
        assert folders[speaker].parent.name == profile.dialect and folders[speaker].parent.parent.name == profile.split
        assert profile.gender == speaker[0]
    assert len({(p.vocal_tract, p.pitch_hz, p.rate, p.breath, p.tilt) for p in table.values()}) == len(table)
    planned = {p.speaker: p for p in plan_corpus(CorpusOptions.small())[0]}
    assert table == planned  # every voice setting, the formant shape included, reads back as drawn
    assert len({p.shape for p in table.values()}) == len(table) and FormantShape() not in {p.shape for p in table.values()}


def test_full_design_is_timits_without_synthesizing():
    profiles, plan = plan_corpus(CorpusOptions.full())
    split = {p.speaker: p.split for p in profiles}
    assert Counter(split.values()) == {"TRAIN": 462, "TEST": 168}
    for name, counts in TIMIT_DIALECT_COUNTS.items():
        dialects = Counter(p.dialect for p in profiles if p.split == name)
        assert tuple(dialects[f"DR{i}"] for i in range(1, 9)) == counts
    assert 0.28 < sum(p.gender == "F" for p in profiles) / 630 < 0.33
    readers = defaultdict(set)
    for entry in plan:
        readers[entry["utt"], entry["text"]].add(entry["speaker"])
    assert len({utt for utt, _ in readers}) == len(readers)  # one text per utterance name
    kinds = defaultdict(list)
    for (utt, _), speakers in readers.items():
        kinds[utt[:2]].append(speakers)
    assert len(kinds["SA"]) == 2 and all(len(s) == 630 for s in kinds["SA"])
    assert len(kinds["SX"]) == 450 and all(len(s) == 7 for s in kinds["SX"])
    assert all(len({split[s] for s in speakers}) == 1 for speakers in kinds["SX"])  # parallel within a split
    assert len(kinds["SI"]) == 1890 and all(len(s) == 1 for s in kinds["SI"])
    per_speaker = Counter(entry["speaker"] for entry in plan)
    assert set(per_speaker.values()) == {10}
    assert len({entry["text"] for entry in plan}) == 2 + 450 + 1890


def test_plan_is_seeded_and_variation_scales_the_jitter():
    options = CorpusOptions.small(seed=7)
    assert plan_corpus(options) == plan_corpus(CorpusOptions.small(seed=7))
    assert plan_corpus(options)[1] != plan_corpus(CorpusOptions.small(seed=8))[1]
    steady = plan_corpus(CorpusOptions.small(seed=7, variation=0.0))[1]
    by_speaker = defaultdict(set)
    for entry in steady:
        by_speaker[entry["speaker"]].add((entry["pitch"], entry["pitch_range"], entry["rate"]))
    assert all(len(s) == 1 for s in by_speaker.values())  # 0: a speaker repeats its settings
    by_speaker.clear()
    for entry in plan_corpus(options)[1]:
        by_speaker[entry["speaker"]].add((entry["pitch"], entry["pitch_range"], entry["rate"]))
    assert all(len(s) == 8 for s in by_speaker.values())  # every utterance differs
    with pytest.raises(ValueError, match="variation"):
        plan_corpus(CorpusOptions.small(variation=-1))
    with pytest.raises(ValueError, match="unknown corpus size"):
        CorpusOptions.of_size("huge")


def _profile(**changes):
    base = dict(speaker="MABC0", split="TRAIN", dialect="DR1", vocal_tract=1.0, pitch_hz=100.0, pitch_span=1.5,
                rate=170, breath=0.0, tilt=0.0, roughness=2, flutter=40)
    return SpeakerProfile(**{**base, **changes})


def _voice(**changes):
    profile = _profile(**changes)
    with ESpeak.isolated({profile.variant_name: profile.variant()}) as engine:
        engine.seed(1)
        out = engine.synthesize(
            "Measure the yellow garage before the storm arrives.", voice=f"en-us+{profile.variant_name}"
        )
    return out.audio.astype(np.float32) / 32768, out.sample_rate


def _median_f0(audio, rate):
    f0 = torchaudio.functional.detect_pitch_frequency(torch.from_numpy(audio), rate)
    return f0.median().item()


def _spectral_centroid(audio, rate):
    spectrum = torch.stft(torch.from_numpy(audio), 512, window=torch.hann_window(512), return_complex=True).abs() ** 2
    freqs = torch.linspace(0, rate / 2, spectrum.shape[0])
    return ((spectrum.sum(1) * freqs).sum() / spectrum.sum()).item()


def test_configured_voices_really_differ():
    low, rate = _voice()
    high, _ = _voice(pitch_hz=200.0)
    # the configured base pitch doubles: the measured median F0 rises by at least 60 %
    assert _median_f0(high, rate) > 1.6 * _median_f0(low, rate)
    short_tract, _ = _voice(vocal_tract=1.2)
    dark, _ = _voice(tilt=1.0)
    centroid = _spectral_centroid(low, rate)
    assert _spectral_centroid(short_tract, rate) > 1.1 * centroid  # formants 20 % up
    assert _spectral_centroid(dark, rate) < 0.95 * centroid  # energy moved to low frequencies


def _band_centroid(audio, rate, low, high):
    spectrum = torch.stft(torch.from_numpy(audio), 512, window=torch.hann_window(512), return_complex=True).abs() ** 2
    freqs = torch.linspace(0, rate / 2, spectrum.shape[0])
    band = (freqs >= low) & (freqs <= high)
    power = spectrum[band].sum(1)
    return ((power * freqs[band]).sum() / power.sum()).item()


def test_two_speakers_formant_offsets_differ_in_the_spectra():
    # one vocal tract, two formant shapes: formants 2 and 3 placed 12 % higher for one speaker, 12 % lower for the other
    up = FormantShape(offsets=(1.0, 1.12, 1.12, 1.0, 1.0))
    down = FormantShape(offsets=(1.0, 0.88, 0.88, 1.0, 1.0))
    raised, rate = _voice(shape=up)
    lowered, _ = _voice(shape=down)
    neutral, _ = _voice()
    # where F2 and F3 live, the energy sits measurably higher for the raised speaker (F1's band stays put)
    centroids = [_band_centroid(audio, rate, 1000, 3500) for audio in (lowered, neutral, raised)]
    assert centroids[0] < centroids[1] < centroids[2] and centroids[2] > 1.05 * centroids[0], centroids
    # a stronger formant 2 (height) puts more of the energy into its band
    strong, _ = _voice(shape=FormantShape(heights=(100.0, 180.0, 100.0, 100.0, 100.0)))
    weak, _ = _voice(shape=FormantShape(heights=(100.0, 50.0, 100.0, 100.0, 100.0)))

    def band_share(audio):
        spectrum = torch.stft(torch.from_numpy(audio), 512, window=torch.hann_window(512), return_complex=True).abs() ** 2
        freqs = torch.linspace(0, rate / 2, spectrum.shape[0])
        return (spectrum[(freqs > 900) & (freqs < 2500)].sum() / spectrum.sum()).item()

    assert band_share(strong) > 1.2 * band_share(weak)


def _reading_audio(profile, options, rng_seed, text="Measure the yellow garage before the storm arrives."):
    import random

    entry = plan_reading(profile, "SX9", text, options, random.Random(rng_seed), random.Random(rng_seed + 1))
    with ESpeak.isolated(speaker_voices(profile, options)) as espeak:
        espeak.seed(5)
        out = read_entry(espeak, entry)
    labels = [label for _, _, label in phone_segments(out.phonemes, len(out.audio), 1.0)]
    return entry, out.audio, labels


def test_with_the_variation_knobs_at_zero_a_repeated_sentence_is_read_identically():
    profile = _profile(shape=FormantShape.draw(__import__("random").Random(3), "M"))
    still = CorpusOptions.small(variation=0.0, token_variation=0.0)
    first, audio_1, labels_1 = _reading_audio(profile, still, rng_seed=1)
    second, audio_2, labels_2 = _reading_audio(profile, still, rng_seed=2)  # other draws: nothing to draw from
    assert first == second and first["markup"] is None
    assert np.array_equal(audio_1, audio_2) and labels_1 == labels_2
    # the knobs on: the same speaker reads the sentence with other word tokens and rates; the phones stay
    varied = CorpusOptions.small()
    first, audio_1, labels_1 = _reading_audio(profile, varied, rng_seed=1)
    second, audio_2, labels_2 = _reading_audio(profile, varied, rng_seed=2)
    assert first["markup"] != second["markup"] and first["markup"].count("<voice ") == 8  # one per word
    assert labels_1 == labels_2
    assert len(audio_1) != len(audio_2) or not np.array_equal(audio_1, audio_2)
    # the word tokens are the speaker's voice with formants 1-3 moved, and nothing else
    voices = speaker_voices(profile, varied)
    assert len(voices) == 1 + 8
    own = voices.pop(profile.variant_name).splitlines()
    for text in voices.values():
        changed = {line.split()[1] for line, mine in zip(text.splitlines(), own) if line != mine and line.startswith("formant")}
        assert changed and changed <= {"1", "2", "3"}
        assert [line for line in text.splitlines() if not line.startswith(("formant", "name"))] == \
            [line for line in own if not line.startswith(("formant", "name"))]


def test_engine_output_does_not_depend_on_earlier_calls():
    breathy = SpeakerProfile("FABC0", "TRAIN", "DR1", 1.15, 190.0, 1.5, 160, 1.0, 0.3, 3, 80)
    variants = {breathy.variant_name: breathy.variant()}
    takes = []
    for earlier in ([], ["Some other words first.", "And a question?"]):
        with ESpeak.isolated(variants) as engine:
            for text in earlier:
                engine.synthesize(text, voice=f"en-us+{breathy.variant_name}")
        ESpeak.instance().synthesize("The shared engine speaks too.")
        with ESpeak.isolated(variants) as engine:
            engine.seed(1234)
            takes.append(engine.synthesize("A breathy voice reads about the weather.", voice=f"en-us+{breathy.variant_name}").audio)
    assert np.array_equal(takes[0], takes[1])


def _corpus_files(root):
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.suffix in (".WAV", ".PHN", ".TXT")}


def test_synthesis_is_deterministic_across_worker_counts(corpus, tmp_path):
    again = tmp_path / "again"
    synthesize_corpus(again, CorpusOptions.small(), workers=1, progress=False)  # the fixture used one per core
    files = _corpus_files(corpus)
    assert len(files) == 3 * 64 + 1 and files == _corpus_files(again)  # WAV, PHN, TXT; SPKRINFO.TXT


def test_interrupted_synthesis_resumes_without_redoing_finished_speakers(corpus, tmp_path, monkeypatch):
    real, done = synthesize._synthesize_speaker, []

    def dies_after_three(job):
        if len(done) == 3:
            raise KeyboardInterrupt
        done.append(real(job))
        return done[-1]

    monkeypatch.setattr(synthesize, "_synthesize_speaker", dies_after_three)
    out = tmp_path / "timit"
    with pytest.raises(KeyboardInterrupt):
        synthesize_corpus(out, CorpusOptions.small(), workers=1, progress=False)
    assert not out.exists() and len(list((tmp_path / "timit.partial").glob("*/DR*/*"))) == 3
    redone = []
    monkeypatch.setattr(synthesize, "_synthesize_speaker", lambda job: redone.append(real(job)))
    manifest = synthesize_corpus(out, CorpusOptions.small(), workers=1, progress=False)
    assert len(redone) == 5 and not set(redone) & set(done)
    assert manifest["utterances"] == 64 and not (tmp_path / "timit.partial").exists()
    assert _corpus_files(out) == _corpus_files(corpus)  # same corpus as an uninterrupted build


def test_corpus_is_reused_and_other_options_refused(corpus, monkeypatch):
    written = {path: path.stat().st_mtime_ns for path in corpus.rglob("*") if path.is_file()}
    synthesized = []
    monkeypatch.setattr(synthesize, "_synthesize_speaker", lambda job: synthesized.append(job))
    manifest = synthesize_corpus(corpus, CorpusOptions.small(), workers=1, progress=False)
    assert manifest["utterances"] == 8 * 8 and manifest["speakers"] == 8
    assert not synthesized  # reused: no speaker synthesized again, no file written again
    assert {path: path.stat().st_mtime_ns for path in corpus.rglob("*") if path.is_file()} == written
    with pytest.raises(FileExistsError, match="other options"):
        synthesize_corpus(corpus, CorpusOptions.small(seed=99))


def test_manifest_reports_the_phone_coverage_of_the_files(corpus):
    manifest = json.loads((corpus / "corpus.json").read_text())
    counted = Counter()
    for phn in corpus.rglob("*.PHN"):
        counted.update(FOLD_61_TO_39[line.split()[2]] for line in phn.read_text().splitlines())
    assert manifest["phone_counts"] == {phone: counted[phone] for phone in TIMIT39}
    assert manifest["missing_phones"] == [phone for phone in TIMIT39 if not counted[phone]]
    assert 0.03 < manifest["hours"] < 0.1 and manifest["speech_frames"] > 0


def test_the_full_corpus_sentences_cover_every_folded_phone():
    texts = sorted({entry["text"] for entry in plan_corpus(CorpusOptions.full())[1]})
    counts = Counter()
    espeak = ESpeak.instance()
    for text in texts:
        counts.update(FOLD_61_TO_39[espeak_to_timit(name)] for _, name in espeak.synthesize(text).phonemes)
    assert set(TIMIT39) <= set(counts), set(TIMIT39) - set(counts)
    assert min(counts[p] for p in TIMIT39) >= 100  # every class well represented, not a single token


def test_command_line_small_alias(tmp_path):
    synthesize.main([str(tmp_path / "c"), "--small", "--workers", "1"])
    manifest = json.loads((tmp_path / "c" / "corpus.json").read_text())
    assert manifest["options"] == synthesize.options_record(CorpusOptions.of_size("small"))


def _long_term_spectrum_db(root, speaker):
    """A speaker's mean power spectrum over all its utterances, in dB per STFT bin (512 points, 16 kHz)."""
    spectra = []
    for wav in sorted(root.glob(f"*/DR*/{speaker}/*.WAV")):
        audio, _ = soundfile.read(str(wav), dtype="float32")
        spectrum = torch.stft(torch.from_numpy(audio), 512, window=torch.hann_window(512), return_complex=True).abs() ** 2
        spectra.append(spectrum.mean(dim=1))
    return 10 * torch.log10(torch.stack(spectra).mean(dim=0) + 1e-12).numpy()


def test_voice_colour_puts_each_speakers_drawn_gains_into_its_spectrum_and_at_zero_changes_nothing(corpus, tmp_path):
    from speechbrain_fdnf.corpus.speakers import COLOUR_POINTS_HZ

    # at 0 (the default) a voice's equaliser is the tilt's alone, the speaker table and the manifest have no
    # colour: what eSpeak is given is what it was given before the knob, so the corpus is the same, byte for byte
    profiles = read_speaker_table(corpus / "SPKRINFO.TXT")
    for profile in profiles.values():
        t = profile.tilt
        assert profile.colour == ()
        assert f"tone 400 {round(100 + 50 * t)} 1200 100 2500 {round(100 - 35 * t)} 4000 {round(100 - 50 * t)}\n" \
            in profile.variant()
    assert "Colour" not in (corpus / "SPKRINFO.TXT").read_text()
    assert "voice_colour" not in json.loads((corpus / "corpus.json").read_text())["options"]
    # on: every speaker's spectrum moves, at each equaliser point, with the gain drawn for it there
    coloured = tmp_path / "coloured"
    synthesize_corpus(coloured, CorpusOptions.small(voice_colour=6.0), progress=False)
    drawn, measured = [], []
    freqs = np.linspace(0, 8000, 257)
    for speaker, profile in read_speaker_table(coloured / "SPKRINFO.TXT").items():
        assert len(profile.colour) == len(COLOUR_POINTS_HZ) and profile.shape == profiles[speaker].shape
        change = _long_term_spectrum_db(coloured, speaker) - _long_term_spectrum_db(corpus, speaker)
        drawn += list(profile.colour)
        measured += [change[np.argmin(np.abs(freqs - hz))] for hz in COLOUR_POINTS_HZ]
    assert np.corrcoef(drawn, measured)[0, 1] > 0.9
    assert 0.5 < np.polyfit(drawn, measured, 1)[0] < 1.2  # about the drawn dB (eSpeak interpolates between points)
    # the phone labels are the same: the colour changes the voice, not what it says (a closure is found in the
    # audio's digital silence, which the colour may lengthen or shorten by a few samples: compared without them)
    for phn in corpus.glob("TRAIN/DR*/*/*.PHN"):
        assert _without_closures(phn) == _without_closures(coloured / phn.relative_to(corpus))


def _without_closures(phn):
    """The segments of a .PHN file with every closure folded back into the segment before it."""
    from speechbrain_fdnf.corpus.synthesize import CLOSURES

    merged = []
    for start, end, label in (line.split() for line in phn.read_text().splitlines()):
        if label in CLOSURES.values():
            merged[-1][1] = end
        else:
            merged.append([start, end, label])
    return merged


def test_timit_closures_label_the_silence_before_stops_and_change_nothing_else(corpus, tmp_path):
    from speechbrain_fdnf.corpus.synthesize import CLOSURE_FLOOR, CLOSURES, PRE_RINGING_SAMPLES

    # closures are on by default; off, the corpus is the one built before the knob, manifest included
    assert CorpusOptions.small().timit_closures
    assert json.loads((corpus / "corpus.json").read_text())["options"]["timit_closures"] is True
    unclosed = tmp_path / "unclosed"
    synthesize_corpus(unclosed, CorpusOptions.small(timit_closures=False), progress=False)
    assert "timit_closures" not in json.loads((unclosed / "corpus.json").read_text())["options"]
    voiceless, with_closure = 0, 0
    for phn in sorted(corpus.glob("*/DR*/*/*.PHN")):
        wav = phn.with_suffix(".WAV")
        assert wav.read_bytes() == (unclosed / wav.relative_to(corpus)).read_bytes()  # the same audio
        audio, _ = soundfile.read(str(wav), dtype="int16")
        before = [line.split() for line in (unclosed / phn.relative_to(corpus)).read_text().splitlines()]
        after = [line.split() for line in phn.read_text().splitlines()]
        for index, (start, end, label) in enumerate(after):
            if label in CLOSURES.values():
                assert after[index + 1][2] in CLOSURES and CLOSURES[after[index + 1][2]] == label  # before its stop
                silent = np.abs(audio[int(start):int(end) - PRE_RINGING_SAMPLES].astype(int))
                assert silent.max(initial=0) <= CLOSURE_FLOOR  # a closure is silence
        assert _without_closures(phn) == before  # folded back into the phone before, the labels without closures
        for index, (_, _, label) in enumerate(after):
            if label in ("p", "t", "k", "ch"):
                voiceless += 1
                with_closure += after[index - 1][2] in CLOSURES.values()
    assert with_closure > 0.8 * voiceless  # eSpeak renders voiceless closures silent


def test_noise_shape_moves_each_speakers_consonant_noise_by_its_draw_and_leaves_the_rest_and_at_zero_nothing(
        corpus, tmp_path):
    from speechbrain_fdnf.corpus.noise_shape import TILT_PIVOT_HZ

    # at 0 (the default) no speaker has a shaping and the manifest does not name the knob: the corpus as before
    profiles = read_speaker_table(corpus / "SPKRINFO.TXT")
    assert all(profile.noise == () for profile in profiles.values())
    assert "noise_shape" not in json.loads((corpus / "corpus.json").read_text())["options"]
    shaped = tmp_path / "shaped"
    synthesize_corpus(shaped, CorpusOptions.small(noise_shape=1.0), progress=False)
    for speaker, profile in read_speaker_table(shaped / "SPKRINFO.TXT").items():
        # the voice is the same voice: only the consonant noise's shaping is new
        assert len(profile.noise) == 2 and profile.shape == profiles[speaker].shape
        assert profile.vocal_tract == profiles[speaker].vocal_tract
        spectra = {"before": [], "after": []}
        for wav in sorted(corpus.glob(f"*/DR*/{speaker}/*.WAV")):
            twin = shaped / wav.relative_to(corpus)
            assert wav.with_suffix(".PHN").read_text() == twin.with_suffix(".PHN").read_text()
            audio = {"before": soundfile.read(str(wav), dtype="int16")[0],
                     "after": soundfile.read(str(twin), dtype="int16")[0]}
            for line in wav.with_suffix(".PHN").read_text().splitlines():
                start, end, label = int(line.split()[0]), int(line.split()[1]), line.split()[2]
                if label not in OBSTRUENTS:  # every sample outside the consonants is the original's
                    assert (audio["before"][start:end] == audio["after"][start:end]).all(), (wav, label)
                elif end - start >= 512 + 160:  # inside (away from the cross-faded edges): the noise's spectrum
                    for name in spectra:
                        spectra[name].append(_power_spectrum(audio[name][start + 80:end - 80]))
        # the drawn frequency factor and slope are what best maps the spectrum before onto the one after
        warp, tilt = _fitted_warp_and_tilt(*(np.mean(spectra[name], axis=0) for name in ("before", "after")),
                                           TILT_PIVOT_HZ)
        assert abs(warp / profile.noise[0] - 1) < 0.03, (speaker, warp, profile.noise)
        assert abs(tilt - profile.noise[1]) < 1.0, (speaker, tilt, profile.noise)


def _power_spectrum(samples):
    """Mean power over 512-point Hann frames (half overlap) of one segment."""
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), 512)[::256]
    return (np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)) ** 2).mean(axis=0)


def _fitted_warp_and_tilt(before, after, pivot_hz, rate=16000):
    """The frequency factor (grid of 0.5 %) and dB-per-octave slope that best turn ``before`` into ``after``
    (log spectra over 500-6000 Hz, a free level)."""
    freqs = np.linspace(0, rate / 2, len(before))
    band = (freqs >= 500) & (freqs <= 6000)
    octaves = np.log2(freqs[band] / pivot_hz)
    design = np.stack([np.ones_like(octaves), octaves], axis=1)
    best = None
    for warp in np.arange(0.75, 1.35, 0.005):
        moved = 10 * np.log10(np.interp(freqs[band] / warp, freqs, before) + 1e-9)
        residual = 10 * np.log10(after[band] + 1e-9) - moved
        coefficients, *_ = np.linalg.lstsq(design, residual, rcond=None)
        error = np.sum((residual - design @ coefficients) ** 2)
        if best is None or error < best[0]:
            best = (error, warp, coefficients[1])
    return best[1], best[2]
