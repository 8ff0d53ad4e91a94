"""Synthetic speakers for the embedded corpus, and their speaker table.

Each speaker is an eSpeak NG voice variant written for it: a vocal-tract
length (all formant frequencies scaled together), a pitch level and range, a
speaking rate, and a voice quality (breathiness, spectral tilt, roughness,
pitch flutter), drawn per gender. TIMIT's proportions are kept: about 70 %
male speakers, and its split of speakers over the eight dialect regions. The
corpus root gets a ``SPKRINFO.TXT`` in the layout of TIMIT's, with the voice
settings in place of TIMIT's recording data.

Dialect regions are labels only: eSpeak NG's other English accents use other
phoneme inventories, whose symbols the TIMIT-61 mapping of the American
voice would mislabel, so every speaker uses the ``en-us`` phonology.

Authors
 * speechbrain-fdnf developers
"""

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

    @property
    def gender(self):
        """``"M"`` or ``"F"``."""
        return self.speaker[0]

    @property
    def variant_name(self):
        """The eSpeak variant name of this voice (``en-us+<variant_name>``)."""
        return f"fdnf_{self.speaker}"

    def variant(self):
        """The eSpeak NG voice-variant file of this speaker.

        Example
        -------
        >>> profile = SpeakerProfile("FXYZ0", "TRAIN", "DR1", 1.1, 200.0, 1.5, 170, 0.5, 0.0, 2, 60)
        >>> print(profile.variant().splitlines()[3])
        pitch 200 300
        """
        formants = "".join(
            # formant 0 is a low resonance that moves less with vocal-tract length
            f"formant {n} {round(100 * (1 + (self.vocal_tract - 1) * (0.5 if n == 0 else 1)))} 100 100\n"
            for n in range(9)
        )
        breath = " ".join(str(round(self.breath * w)) for w in (0, 3, 5, 5, 5, 5, 5, 3))
        t = self.tilt
        tone = f"tone 400 {round(100 + 50 * t)} 1200 100 2500 {round(100 - 35 * t)} 4000 {round(100 - 50 * t)}"
        return (
            f"language variant\nname {self.variant_name}\ngender {'female' if self.gender == 'F' else 'male'}\n"
            f"pitch {round(self.pitch_hz)} {round(self.pitch_hz * self.pitch_span)}\n{formants}"
            f"{tone}\nbreath {breath}\nroughness {self.roughness}\nflutter {self.flutter}\n"
        )


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


def draw_speakers(rng, split, num_speakers, taken=None):
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
        profiles.append(
            SpeakerProfile(
                speaker=speaker,
                split=split,
                dialect=dialect,
                vocal_tract=round(_truncated_normal(rng, *_VOCAL_TRACT[gender]), 3),
                pitch_hz=round(_truncated_normal(rng, *_PITCH_HZ[gender]), 1),
                pitch_span=round(rng.uniform(1.25, 1.8), 3),
                rate=round(_truncated_normal(rng, 170, 18, 135, 215)),
                breath=round(breath, 3),
                tilt=round(rng.uniform(-1, 1), 3),
                roughness=rng.randint(0, 5),
                flutter=rng.randint(20, 90),
            )
        )
    return profiles


def write_speaker_table(path, profiles):
    """Writes ``SPKRINFO.TXT``: TIMIT's layout (``;`` comments, one speaker per line)."""
    lines = [
        "; Speakers of the speechbrain-fdnf embedded corpus, in the layout of TIMIT's SPKRINFO.TXT:",
        "; ID is the folder name without its gender letter; Use is TRN or TST. The voice columns",
        "; replace TIMIT's recording data: vocal-tract (formant) scale, base pitch (Hz), pitch span,",
        "; rate (words/min), breathiness, spectral tilt, roughness, flutter.",
        "; ID  Sex DR Use  VTL    F0     Span   Rate Breath Tilt   Rough Flutter",
    ]
    for p in sorted(profiles, key=lambda p: (p.split, p.dialect, p.speaker)):
        use = "TRN" if p.split == "TRAIN" else "TST"
        lines.append(
            f"{p.speaker[1:]:<5}{p.gender:<4}{p.dialect[2:]:<3}{use:<5}{p.vocal_tract:<7.3f}{p.pitch_hz:<7.1f}"
            f"{p.pitch_span:<7.3f}{p.rate:<5d}{p.breath:<7.3f}{p.tilt:<7.3f}{p.roughness:<6d}{p.flutter:d}"
        )
    Path(path).write_text("\n".join(lines) + "\n")


def read_speaker_table(path):
    """Reads a table written by :func:`write_speaker_table`; returns folder name -> SpeakerProfile."""
    profiles = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        ident, sex, region, use, *voice = line.split()
        if len(voice) != 8:
            raise ValueError(f"{path}: malformed speaker line {line!r}")
        casts = [float, float, float, int, float, float, int, int]
        profile = SpeakerProfile(
            sex + ident, "TRAIN" if use == "TRN" else "TEST", f"DR{region}", *(cast(v) for cast, v in zip(casts, voice))
        )
        profiles[profile.speaker] = profile
    return profiles

