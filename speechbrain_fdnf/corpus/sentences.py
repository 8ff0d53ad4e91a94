"""Sentences read by the speakers of the embedded corpus.

Two kinds, both written for this project (no third-party text):

* :data:`HANDWRITTEN`, chosen to cover the English phone inventory in many
  contexts. The first two are the corpus's SA1 and SA2 (read by every speaker,
  as TIMIT's dialect sentences are); the others open the SX pool.
* Sentences generated from the grammar that ships with the package
  (``grammar.json``: templates over word classes), as many as a corpus size
  needs: TIMIT's design takes 450 SX and 1890 SI sentences.

Authors
 * speechbrain-fdnf developers
"""

import json
import random
import re
from functools import lru_cache
from pathlib import Path

GRAMMAR_FILE = Path(__file__).with_name("grammar.json")
_SLOT = re.compile(r"\{(\w+)(?::(\w+))?\}")
_FORMS = {"noun": ("singular", "plural"), "verb": ("base", "past", "present"), "intransitive": ("base", "past")}

HANDWRITTEN = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells fresh shellfish by the harbour each Thursday morning.",
    "A cheerful judge joined the choir in June.",
    "Thick fog rolled over the valley before the thunder began.",
    "My brother measured the beige garage with a yellow ruler.",
    "Please bring the heavy books back to the library tomorrow.",
    "Every autumn the old oak tree drops thousands of acorns.",
    "Whose umbrella is leaning against the kitchen wall?",
    "The young pilot waved goodbye and climbed into the plane.",
    "Nine nimble kittens chased a ball of purple yarn.",
    "Could you pour a cup of warm milk for the boy?",
    "The ship sailed north through icy water for a week.",
    "A loud noise woke the village just after midnight.",
    "He thought the theatre was the best place in town.",
    "We watched the bright stars appear one by one.",
    "Her voice was calm, but her hands were shaking.",
    "The gardener planted roses, tulips and violets along the path.",
    "Fishermen mend their nets while gulls circle above the pier.",
    "Jack enjoyed cheese, chips and a large orange juice.",
    "The clever girl solved the puzzle in under a minute.",
    "Our neighbour owns a noisy yellow motorbike.",
    "Thin vines curled around the rusty iron gate.",
    "Bake the bread until the crust turns golden brown.",
    "Measure twice, cut once, and never rush the job.",
    "The children laughed as the clown juggled seven eggs.",
    "A gentle breeze carried the smell of pine and salt.",
    "They paid for the repairs with a cheque from the bank.",
    "Would you rather walk home or wait for the bus?",
    "The museum displays rare coins, maps and ancient pottery.",
    "Zebras and giraffes gathered near the shallow river.",
    "The author wrote her first novel in a quiet cottage.",
    "Heavy rain flooded the streets around the railway station.",
    "I usually jog along the beach at sunrise.",
    "The judge asked the witness to speak clearly.",
    "Shiny boots stood beside the door in a neat row.",
    "Father fixed the broken chair with glue and wire.",
    "A thousand voices joined together in the final chorus.",
    "The doctor measured my pulse and checked my throat.",
    "Owls hunt mice in the fields during the night.",
    "Put the fragile vase on the top shelf, away from the dog.",
    "The teacher gave each pupil a map of the world.",
    "Bees buzz busily among the blossoms in early May.",
    "We heard the church bells ring across the frozen lake.",
    "The engineer checked every joint of the steel bridge.",
    "Few people ever visit the island in winter.",
    "Grandmother keeps her treasure in a wooden box.",
    "The hungry bear searched the camp for honey.",
    "A violin played softly while the guests arrived.",
    "Thunder echoed through the canyon for several seconds.",
    "Choose a book, then sit down and read quietly.",
    "The boy threw the red ball over the fence.",
    "Sugar and flour were mixed in a large bowl.",
    "The vision of the city at dawn was unusual and lovely.",
    "Our journey north took three days by car.",
    "Turn left at the corner and follow the narrow lane.",
    "A squirrel hid several nuts under the hedge.",
    "The sailor told us stories about whales and storms.",
    "Both twins wore matching jackets and woollen hats.",
    "It is pleasure, not duty, that brings them here.",
    "Her purse was found under a pile of leaves.",
    "The workers earned extra money on the first Thursday.",
    "How much does the blue bicycle cost?",
    "The mayor thanked everyone who helped clean the park.",
    "Join us at the fair for games, music and food.",
]


@lru_cache(maxsize=1)
def load_grammar():
    """The packaged grammar (templates and word classes) as a dict."""
    return json.loads(GRAMMAR_FILE.read_text(encoding="utf-8"))


def _fill(template, grammar, rng):
    def word(match):
        name, form = match.group(1), match.group(2)
        choice = rng.choice(grammar[name])
        if name in _FORMS:
            return choice[_FORMS[name].index(form or _FORMS[name][0])]
        return choice

    text = _SLOT.sub(word, template)
    return text[0].upper() + text[1:]


def generate_sentences(count, seed=0, exclude=()):
    """``count`` distinct sentences drawn from the packaged grammar.

    Arguments
    ---------
    count : int
        How many to generate.
    seed : int
        The draw depends on it alone.
    exclude : iterable of str
        Sentences that must not be produced (e.g. the handwritten ones).

    Returns
    -------
    list of str

    Example
    -------
    >>> first = generate_sentences(3, seed=1)
    >>> len(set(first)), first == generate_sentences(3, seed=1)
    (3, True)
    """
    grammar, rng = load_grammar(), random.Random(seed)
    seen, sentences = set(exclude), []
    attempts = 0
    while len(sentences) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise ValueError(f"the grammar in {GRAMMAR_FILE} cannot make {count} distinct sentences")
        text = _fill(rng.choice(grammar["templates"]), grammar, rng)
        if text not in seen:
            seen.add(text)
            sentences.append(text)
    return sentences


def sentence_pool(num_sx, num_si, seed=0):
    """The SA, SX and SI sentences of a corpus.

    SA are the first two handwritten sentences; SX take the other handwritten
    ones first, then generated ones; SI are generated. No sentence repeats.

    Returns
    -------
    tuple of three lists of str
        ``(sa, sx, si)``.

    Example
    -------
    >>> sa, sx, si = sentence_pool(70, 5)
    >>> len(sa), len(sx), len(si), sx[0] == HANDWRITTEN[2]
    (2, 70, 5, True)
    """
    sa, written = HANDWRITTEN[:2], HANDWRITTEN[2:]
    extra = max(0, num_sx - len(written))
    generated = generate_sentences(extra + num_si, seed, exclude=HANDWRITTEN)
    return sa, written[:num_sx] + generated[:extra], generated[extra:]
