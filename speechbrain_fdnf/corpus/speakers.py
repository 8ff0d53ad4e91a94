"""Synthetic speakers for the embedded corpus, and their speaker table.

Each speaker is an eSpeak NG voice variant written for it: a vocal-tract
length (all formant frequencies scaled together), each formant's own offset
from that scale in frequency, strength and bandwidth, the strength of the low
(nasal) resonance, a pitch level and range, a speaking rate, and a glottal
source (breathiness, spectral tilt, roughness, pitch flutter), drawn per gender
from the distributions below (docs/DESIGN.md gives their reasons). Within a
speaker, each word may be read with its formant targets jittered around the
speaker's (:meth:`SpeakerProfile.token_variants`). TIMIT's proportions are kept: about 70 %
male speakers, and its split of speakers over the eight dialect regions. The
corpus root gets a ``SPKRINFO.TXT`` in the layout of TIMIT's, with the voice
settings in place of TIMIT's recording data.

Dialect regions are labels only: eSpeak NG's other English accents use other
phoneme inventories, whose symbols the TIMIT-61 mapping of the American
voice would mislabel, so every speaker uses the ``en-us`` phonology.

Authors
 * speechbrain-fdnf developers
"""

import math
import random
import string
from dataclasses import dataclass
from pathlib import Path

#: TIMIT's speakers per dialect region (DR1..DR8) in its TRAIN and TEST sets.
TIMIT_DIALECT_COUNTS = {"TRAIN": (38, 76, 76, 68, 70, 35, 77, 22), "TEST": (11, 26, 26, 32, 28, 11, 23, 11)}
#: TIMIT's share of female speakers (192 of 630).
FEMALE_SHARE = 192 / 630
SPEAKER_TABLE = "SPKRINFO.TXT"

# (mean, sd, low, high) per gender; the female vocal tract is about 15 % shorter
_VOCAL_TRACT = {"M": (1.0, 0.045, 0.9, 1.1), "F": (1.15, 0.045, 1.05, 1.25)}
_PITCH_HZ = {"M": (100, 14, 72, 140), "F": (180, 22, 135, 240)}

#: The formants a speaker's shape offsets, after eSpeak's numbering (0 is the low nasal resonance).
SHAPED_FORMANTS = (1, 2, 3, 4, 5)
# The distributions below are those of ``voice_spread`` and ``token_variation`` 1, chosen on the
# valid utterances so that one frame carries about TIMIT's phone and speaker evidence
# (benchmarks/calibrate_corpus.py); docs/DESIGN.md gives the reasons and why they exceed the
# formant spreads measured in real speech (they stand in for what eSpeak cannot render).
#: Per formant 1..5, the SD of its frequency offset from the vocal-tract scale (relative); the
#: lower formants, which articulation habits move most, spread most.
FORMANT_OFFSET_SD = (0.14, 0.125, 0.11, 0.10, 0.10)
#: SDs of the log strength (height) and log bandwidth of each formant, and of the nasal resonance's
#: log strength; the mean bandwidth per gender (breathier, higher-pitched voices: wider).
FORMANT_HEIGHT_SD, FORMANT_WIDTH_SD, NASAL_HEIGHT_SD = 0.35, 0.35, 0.5
_WIDTH_MEAN = {"M": 1.0, "F": 1.1}
#: Per-word jitter of formants 1..3 (relative SD): a speaker's tokens of one vowel differ with
#: stress, rate, reduction and context, which eSpeak renders from one target each.
TOKEN_FORMANT_SD = 0.06
#: Word-level variants drawn per speaker: each word of an utterance reads one of them.
TOKEN_VARIANTS = 8
#: Frequencies of eSpeak's ``tone`` equaliser points a voice sets (it interpolates between them):
#: where the spectral tilt and a voice's colour (``voice_colour``) act.
COLOUR_POINTS_HZ = (400, 1200, 2500, 4000)


#: At ``noise_shape`` 1: the SD of a speaker's own log factor of its consonant noise's frequencies around its
#: vocal tract's (the front cavity varies beyond the tract's length), and of its slope in dB per octave.
NOISE_WARP_SD, NOISE_TILT_SD = 0.08, 2.0


def draw_noise_shape(seed, speaker, vocal_tract, noise_shape):
    """One speaker's shaping of its consonant noise (:mod:`speechbrain_fdnf.corpus.noise_shape`): a frequency
    factor, its vocal tract's scale times its own (log SD :data:`NOISE_WARP_SD`), and a slope in dB per octave
    (SD :data:`NOISE_TILT_SD`), the logarithm of the factor and the slope scaled by ``noise_shape`` (0: none,
    ``()``); from the speaker's own random source, so that turning it on leaves every other draw as it was.

    Example
    -------
    >>> draw_noise_shape(1234, "MABC0", 1.0, 0.0)
    ()
    >>> warp, tilt = draw_noise_shape(1234, "FABC0", 1.15, 1.0)
    >>> 0.9 < warp / 1.15 < 1.1
    True
    """
    if noise_shape == 0:
        return ()
    rng = voice_rng(seed, speaker + "/noise")
    log_warp = noise_shape * (math.log(vocal_tract) + rng.gauss(0, NOISE_WARP_SD))
    return round(math.exp(log_warp), 3), round(noise_shape * rng.gauss(0, NOISE_TILT_SD), 2)


def draw_colour(seed, speaker, voice_colour):
    """One speaker's spectral colour: an independent gain in dB at each of :data:`COLOUR_POINTS_HZ`, with SD
    ``voice_colour`` (0: none, ``()``), from the speaker's own random source, so that turning it on leaves
    every other draw of the corpus as it was.

    Example
    -------
    >>> draw_colour(1234, "MABC0", 0.0)
    ()
    >>> len(draw_colour(1234, "MABC0", 3.0)) == len(COLOUR_POINTS_HZ)
    True
    """
    if voice_colour == 0:
        return ()
    rng = voice_rng(seed, speaker + "/colour")
    return tuple(round(rng.gauss(0, voice_colour), 2) for _ in COLOUR_POINTS_HZ)


@dataclass(frozen=True)
class FormantShape:
    """How one speaker's formants depart from a uniformly scaled vocal tract.

    Attributes
    ----------
    offsets : tuple of float
        Frequency factor of formants 1..5 on top of the vocal-tract scale (1: none).
    heights, widths : tuple of float
        Strength and bandwidth of formants 1..5, in eSpeak's percent (100: its default).
    nasal : float
        Strength of formant 0, the low nasal resonance, in percent.
    """

    offsets: tuple = (1.0,) * 5
    heights: tuple = (100.0,) * 5
    widths: tuple = (100.0,) * 5
    nasal: float = 100.0

    def __str__(self):
        """Compact form for the speaker table: ``nasal;f1/h1/w1;...`` (frequency factor in %)."""
        parts = [f"{100 * o:.1f}/{h:.0f}/{w:.0f}" for o, h, w in zip(self.offsets, self.heights, self.widths)]
        return ";".join([f"{self.nasal:.0f}", *parts])

    @classmethod
    def parse(cls, text):
        """The inverse of ``str``."""
        nasal, *parts = text.split(";")
        values = [tuple(float(v) for v in part.split("/")) for part in parts]
        return cls(tuple(round(v[0] / 100, 3) for v in values), tuple(v[1] for v in values),
                   tuple(v[2] for v in values), float(nasal))

    @classmethod
    def draw(cls, rng, gender, spread=1.0):
        """One speaker's shape; ``spread`` scales every SD (0: the neutral shape)."""
        if spread == 0:
            return cls()

        def lognormal(mean, sd):
            return round(100 * mean * math.exp(rng.gauss(0, sd * spread)), 0)

        offsets = tuple(round(min(1.3, max(0.75, 1 + rng.gauss(0, sd * spread))), 3) for sd in FORMANT_OFFSET_SD)
        heights = tuple(min(200.0, max(40.0, lognormal(1.0, FORMANT_HEIGHT_SD))) for _ in SHAPED_FORMANTS)
        widths = tuple(min(220.0, max(50.0, lognormal(_WIDTH_MEAN[gender], FORMANT_WIDTH_SD))) for _ in SHAPED_FORMANTS)
        nasal = min(250.0, max(30.0, lognormal(1.0, NASAL_HEIGHT_SD)))
        return cls(offsets, heights, widths, nasal)


def voice_rng(seed, speaker):
    """The random source of one speaker's voice shape and word variants: it depends on the
    corpus seed and the speaker alone, so these draws leave every other draw of the plan as it was."""
    return random.Random(f"{seed}/{speaker}")


@dataclass(frozen=True)
class SpeakerProfile:
    """One synthetic speaker: who, where, and how the voice sounds.

    Attributes
    ----------
    speaker : str
        Folder name, TIMIT style (gender letter, initials, digit): ``MABC0``.
    split, dialect : str
        ``TRAIN``/``TEST`` and ``DR1``..``DR8``.
    vocal_tract : float
        Formant frequency scale (1 = eSpeak's male voice); a shorter vocal
        tract has higher formants.
    pitch_hz : float
        Base pitch in Hz.
    pitch_span : float
        Top of the pitch range over its base (intonation range).
    rate : int
        Speaking rate in words per minute.
    breath : float
        Breathiness, 0 (none) to 1.
    tilt : float
        Spectral tilt, -1 (bright) to 1 (dark).
    roughness : int
        eSpeak's roughness, 0-6.
    flutter : int
        eSpeak's pitch flutter (64 is its default).
    shape : FormantShape
        Each formant's own offset, strength and bandwidth, and the nasal resonance.
    colour : tuple of float
        A spectral colour shared by all the speaker's phones: gains in dB at :data:`COLOUR_POINTS_HZ`
        applied through eSpeak's ``tone`` equaliser on top of the tilt (empty: none).
    noise : tuple of float
        The shaping of its consonant noise, ``(frequency factor, dB per octave)``
        (:func:`draw_noise_shape`; empty: none).
    """

    speaker: str
    split: str
    dialect: str
    vocal_tract: float
    pitch_hz: float
    pitch_span: float
    rate: int
    breath: float
    tilt: float
    roughness: int
    flutter: int
    shape: FormantShape = FormantShape()
    colour: tuple = ()
    noise: tuple = ()

    @property
    def gender(self):
        """``"M"`` or ``"F"``."""
        return self.speaker[0]

    @property
    def variant_name(self):
        """The eSpeak variant name of this voice (``en-us+<variant_name>``)."""
        return f"fdnf_{self.speaker}"

    def variant(self, name=None, jitter=None):
        """The eSpeak NG voice-variant file of this speaker.

        Arguments
        ---------
        name : str, optional
            Variant name (default :attr:`variant_name`).
        jitter : sequence of float, optional
            Extra frequency factors of formants 1, 2, ... (a word-level token).

        Example
        -------
        >>> profile = SpeakerProfile("FXYZ0", "TRAIN", "DR1", 1.1, 200.0, 1.5, 170, 0.5, 0.0, 2, 60)
        >>> print(profile.variant().splitlines()[3])
        pitch 200 300
        >>> print(profile.variant().splitlines()[6])
        formant 2 110 100 100
        """
        shape, jitter = self.shape, list(jitter or ())
        lines = []
        for n in range(9):
            # formant 0 is a low resonance that moves less with vocal-tract length
            frequency = 1 + (self.vocal_tract - 1) * (0.5 if n == 0 else 1)
            height, width = (shape.nasal, 100.0) if n == 0 else (100.0, 100.0)
            if n in SHAPED_FORMANTS:
                k = n - SHAPED_FORMANTS[0]
                frequency *= shape.offsets[k] * (jitter[k] if k < len(jitter) else 1.0)
                height, width = shape.heights[k], shape.widths[k]
            lines.append(f"formant {n} {round(100 * frequency)} {round(height)} {round(width)}\n")
        breath = " ".join(str(round(self.breath * w)) for w in (0, 3, 5, 5, 5, 5, 5, 3))
        t = self.tilt
        levels = (100 + 50 * t, 100, 100 - 35 * t, 100 - 50 * t)  # percent of eSpeak's level at each point
        gains = self.colour or (0.0,) * len(COLOUR_POINTS_HZ)
        tone = "tone " + " ".join(f"{hz} {round(min(255.0, max(5.0, level * 10 ** (gain / 20))))}"
                                  for hz, level, gain in zip(COLOUR_POINTS_HZ, levels, gains))
        return (
            f"language variant\nname {name or self.variant_name}\n"
            f"gender {'female' if self.gender == 'F' else 'male'}\n"
            f"pitch {round(self.pitch_hz)} {round(self.pitch_hz * self.pitch_span)}\n{''.join(lines)}"
            f"{tone}\nbreath {breath}\nroughness {self.roughness}\nflutter {self.flutter}\n"
        )

    def token_name(self, index):
        """The eSpeak variant name of word-level token ``index`` of this voice."""
        return f"{self.variant_name}_t{index}"

    def token_variants(self, rng, token_variation, count=TOKEN_VARIANTS):
        """Word-level tokens of this voice: formants 1-3 jittered around the speaker's own.

        Returns
        -------
        dict
            variant name -> variant text, ``count`` of them (none when ``token_variation`` is 0).
        """
        if token_variation == 0:
            return {}
        tokens = {}
        for index in range(count):
            jitter = [min(1.15, max(0.87, 1 + rng.gauss(0, TOKEN_FORMANT_SD * token_variation))) for _ in range(3)]
            tokens[self.token_name(index)] = self.variant(self.token_name(index), jitter)
        return tokens


def _truncated_normal(rng, mean, sd, low, high):
    while True:
        value = rng.gauss(mean, sd)
        if low <= value <= high:
            return value


def dialect_counts(split, num_speakers):
    """Speakers per dialect region for ``num_speakers``, in TIMIT's proportions.

    Example
    -------
    >>> dialect_counts("TRAIN", 462) == TIMIT_DIALECT_COUNTS["TRAIN"]
    True
    >>> sum(dialect_counts("TEST", 10))
    10
    """
    shares = TIMIT_DIALECT_COUNTS[split]
    exact = [num_speakers * s / sum(shares) for s in shares]
    counts = [int(e) for e in exact]
    # largest remainders get the speakers left over (ties: the lower region)
    for index in sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))[: num_speakers - sum(counts)]:
        counts[index] += 1
    return tuple(counts)


def draw_speakers(rng, split, num_speakers, taken=None, voice_spread=0.0, seed=None, voice_colour=0.0,
                  noise_shape=0.0):
    """Draws ``num_speakers`` distinct speakers of one split.

    Arguments
    ---------
    rng : random.Random
        Source of every draw (the speakers depend on it alone).
    split : str
        ``TRAIN`` or ``TEST``.
    num_speakers : int
    taken : set, optional
        Speaker ids already used (updated in place).
    voice_spread : float
        Scale of each speaker's :class:`FormantShape` (0: formants move with the vocal tract only).
    seed : int, optional
        Corpus seed of the shapes' own random source (:func:`voice_rng`).
    voice_colour : float
        SD in dB of each speaker's spectral colour (:func:`draw_colour`; 0: none).
    noise_shape : float
        Scale of each speaker's shaping of its consonant noise (:func:`draw_noise_shape`; 0: none).

    Returns
    -------
    list of SpeakerProfile
    """
    taken = set() if taken is None else taken
    num_female = round(num_speakers * FEMALE_SHARE)
    genders = ["F"] * num_female + ["M"] * (num_speakers - num_female)
    rng.shuffle(genders)
    dialects = [f"DR{i + 1}" for i, count in enumerate(dialect_counts(split, num_speakers)) for _ in range(count)]
    profiles = []
    for gender, dialect in zip(genders, dialects):
        initials = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
        digit = 0
        while f"{gender}{initials}{digit}" in taken:
            digit += 1
        speaker = f"{gender}{initials}{digit}"
        taken.add(speaker)
        breath = rng.random() ** (0.8 if gender == "F" else 1.5)
        vocal_tract = round(_truncated_normal(rng, *_VOCAL_TRACT[gender]), 3)
        profiles.append(
            SpeakerProfile(
                speaker=speaker,
                split=split,
                dialect=dialect,
                vocal_tract=vocal_tract,
                pitch_hz=round(_truncated_normal(rng, *_PITCH_HZ[gender]), 1),
                pitch_span=round(rng.uniform(1.25, 1.8), 3),
                rate=round(_truncated_normal(rng, 170, 18, 135, 215)),
                breath=round(breath, 3),
                tilt=round(rng.uniform(-1, 1), 3),
                roughness=rng.randint(0, 5),
                flutter=rng.randint(20, 90),
                shape=FormantShape.draw(voice_rng(seed, speaker), gender, voice_spread),
                colour=draw_colour(seed, speaker, voice_colour),
                noise=draw_noise_shape(seed, speaker, vocal_tract, noise_shape),
            )
        )
    return profiles


def write_speaker_table(path, profiles):
    """Writes ``SPKRINFO.TXT``: TIMIT's layout (``;`` comments, one speaker per line)."""
    lines = [
        "; Speakers of the speechbrain-fdnf embedded corpus, in the layout of TIMIT's SPKRINFO.TXT:",
        "; ID is the folder name without its gender letter; Use is TRN or TST. The voice columns",
        "; replace TIMIT's recording data: vocal-tract (formant) scale, base pitch (Hz), pitch span,",
        "; rate (words/min), breathiness, spectral tilt, roughness, flutter, and the formant shape:",
        "; nasal resonance strength (%); then per formant 1..5 frequency factor (%)/strength (%)/bandwidth (%).",
        "; ID  Sex DR Use  VTL    F0     Span   Rate Breath Tilt   Rough Flutter Shape",
    ]
    if any(p.colour for p in profiles):  # (a table without colours is as before the colours existed)
        lines[-1] += " Colour"
        lines.insert(-1, "; Colour: the spectral colour's gains (dB) at " + "/".join(map(str, COLOUR_POINTS_HZ)) + " Hz.")
    if any(p.noise for p in profiles):
        lines[-1] += " Noise"
        lines.insert(-1, "; Noise: noise=<frequency factor>/<dB per octave> of the consonant noise's shaping.")
    for p in sorted(profiles, key=lambda p: (p.split, p.dialect, p.speaker)):
        use = "TRN" if p.split == "TRAIN" else "TST"
        lines.append(
            f"{p.speaker[1:]:<5}{p.gender:<4}{p.dialect[2:]:<3}{use:<5}{p.vocal_tract:<7.3f}{p.pitch_hz:<7.1f}"
            f"{p.pitch_span:<7.3f}{p.rate:<5d}{p.breath:<7.3f}{p.tilt:<7.3f}{p.roughness:<6d}{p.flutter:<8d}{p.shape}"
            + (" " + "/".join(f"{gain:.2f}" for gain in p.colour) if p.colour else "")
            + (f" noise={p.noise[0]:.3f}/{p.noise[1]:.2f}" if p.noise else "")
        )
    Path(path).write_text("\n".join(lines) + "\n")


def read_speaker_table(path):
    """Reads a table written by :func:`write_speaker_table`; returns folder name -> SpeakerProfile."""
    profiles = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        ident, sex, region, use, *voice = line.split()
        noise = [field for field in voice if field.startswith("noise=")]
        voice = [field for field in voice if not field.startswith("noise=")]
        if len(voice) not in (8, 9, 10) or len(noise) > 1:  # 8: tables before formant shapes; 10: with a colour
            raise ValueError(f"{path}: malformed speaker line {line!r}")
        casts = [float, float, float, int, float, float, int, int, FormantShape.parse,
                 lambda text: tuple(float(gain) for gain in text.split("/"))]
        profile = SpeakerProfile(
            sex + ident, "TRAIN" if use == "TRN" else "TEST", f"DR{region}", *(cast(v) for cast, v in zip(casts, voice)),
            **({"noise": tuple(float(v) for v in noise[0][len("noise="):].split("/"))} if noise else {}),
        )
        profiles[profile.speaker] = profile
    return profiles

