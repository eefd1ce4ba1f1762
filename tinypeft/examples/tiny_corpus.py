"""A corpus the project makes itself: short English stories from a small grammar, the same on every machine.

No pretrained causal LM can be downloaded here, so tiny_gpt2 pretrains one on this text. The grammar is
small (about 300 words) but has structure a language model must learn to predict it well:

    verbs take the objects that fit them      (ate -> bread, read -> a letter, fed -> the goat)
    pronouns agree with their noun            (the queen ... she, the farmer ... he, the fox ... it)
    counts agree with plurals                 (a cake, three cakes, two mice, four boxes)
    place phrases take their preposition      (in the kitchen, on the bridge, by the river)

    >>> docs = generate_documents(2, seed=0)
    >>> docs[0]                                                     # doctest: +SKIP
    'The brave sailor found a shiny key on the bridge. He smiled ...'

`restyle` rewrites a document into the "pirate" style that fine-tuning teaches (never in the pretraining
text): every sentence opens with "Arr," and ends with ", matey!" instead of a full stop.
"""
import random

# noun -> pronoun; every person noun has one so that "he"/"she" follows from the noun, as the model must learn
PEOPLE = {
    "farmer": "he", "teacher": "she", "doctor": "she", "baker": "he", "sailor": "he", "king": "he",
    "queen": "she", "girl": "she", "boy": "he", "painter": "she", "soldier": "he", "student": "she",
    "woman": "she", "man": "he", "hunter": "he", "singer": "she", "nurse": "she", "writer": "he",
    "fisherman": "he", "princess": "she", "miller": "he", "tailor": "he", "widow": "she", "prince": "he",
}
ANIMALS = ["cat", "dog", "horse", "bird", "fox", "rabbit", "mouse", "cow", "sheep", "owl", "wolf", "bear",
           "duck", "goat", "pig", "frog", "goose", "deer"]
ANIMAL_SOUNDS = {"cat": "purred", "dog": "barked", "horse": "neighed", "bird": "sang", "fox": "yelped",
                 "cow": "mooed", "sheep": "bleated", "owl": "hooted", "wolf": "howled", "bear": "growled",
                 "duck": "quacked", "goat": "bleated", "pig": "grunted", "frog": "croaked", "goose": "honked"}
PERSON_ADJ = ["old", "young", "tall", "kind", "tired", "happy", "quiet", "brave", "clever", "busy", "angry",
              "sleepy", "proud", "poor", "rich", "little", "shy", "cheerful"]
ANIMAL_ADJ = ["little", "old", "hungry", "white", "black", "brown", "lazy", "fat", "wild", "small", "grey"]
THING_ADJ = ["red", "big", "small", "green", "heavy", "shiny", "wooden", "round", "soft", "broken", "new",
             "blue", "yellow", "strange", "golden", "dusty"]
FOOD_ADJ = ["fresh", "warm", "sweet", "ripe", "hot", "small", "big", "green", "red", "tasty"]
FOODS = ["apple", "bread", "cake", "cheese", "soup", "egg", "pear", "fish", "carrot", "pie", "orange", "plum",
         "potato", "cookie", "onion", "peach"]
THINGS = ["book", "letter", "box", "hat", "key", "ball", "cup", "lamp", "basket", "coat", "map", "rope", "bell",
          "chair", "candle", "ring", "drum", "kite", "bottle", "spoon", "blanket", "shoe"]
READABLE = ["book", "letter", "map"]
UNCOUNTABLE = {"bread", "cheese", "soup"}
PLURAL = {"box": "boxes", "fish": "fish", "mouse": "mice", "sheep": "sheep", "deer": "deer", "goose": "geese",
          "potato": "potatoes", "peach": "peaches", "man": "men", "woman": "women", "wolf": "wolves",
          "princess": "princesses", "fisherman": "fishermen", "widow": "widows"}
PLACES = {"in": ["garden", "kitchen", "forest", "market", "village", "field", "school", "house", "barn", "town",
                 "castle", "shop", "park", "cave", "meadow", "library"],
          "on": ["hill", "road", "bridge", "beach", "boat", "roof"],
          "by": ["river", "lake", "sea", "well", "fire", "gate"]}
TIMES = ["in the morning", "at night", "after lunch", "before dinner", "on sunday", "every day", "yesterday",
         "in the winter", "in the spring", "at noon", "after the rain", "last summer"]
NUMBERS = ["two", "three", "four", "five", "six", "seven"]
PERSON_INTRANSITIVE = ["slept", "laughed", "sang", "danced", "waited", "walked", "worked", "cried", "smiled",
                       "rested", "sat", "read", "wrote", "prayed", "whistled"]
ANIMAL_INTRANSITIVE = ["slept", "ran", "waited", "rested", "played", "hid", "sat", "jumped"]
FEELINGS = ["happy", "sad", "tired", "hungry", "cold", "afraid", "angry", "proud", "glad", "warm"]
# verb -> the kinds of object it takes
TRANSITIVE = {
    "ate": ["food"], "cooked": ["food"], "bought": ["food", "thing"], "sold": ["food", "thing"],
    "found": ["thing", "food", "animal"], "lost": ["thing"], "carried": ["thing", "food"],
    "painted": ["thing"], "read": ["readable"], "opened": ["box"], "saw": ["animal", "person", "thing"],
    "chased": ["animal"], "fed": ["animal"], "helped": ["person"], "visited": ["person"],
    "called": ["person", "animal"], "dropped": ["thing", "food"], "washed": ["thing", "animal"],
    "hid": ["thing", "food"], "gave away": ["thing", "food"], "kept": ["thing", "animal"],
}
REASONS = ["because {p} was {f}", "and then {p} went home", "but {p} did not say a word",
           "so {p} was very {f}", "while the others {vi}"]


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _plural(noun):
    return PLURAL.get(noun, noun + "s")


class _Grammar:
    def __init__(self, rng):
        self.r = rng

    def person(self, definite=True):
        noun = self.r.choice(list(PEOPLE))
        adj = self.r.choice(PERSON_ADJ) if self.r.random() < 0.6 else None
        words = " ".join(w for w in (adj, noun) if w)
        return ("the " + words) if definite else _a(words), PEOPLE[noun]

    def animal(self, definite=True):
        noun = self.r.choice(ANIMALS)
        adj = self.r.choice(ANIMAL_ADJ) if self.r.random() < 0.6 else None
        words = " ".join(w for w in (adj, noun) if w)
        return ("the " + words) if definite else _a(words), "it", noun

    def counted(self, nouns, adjectives):
        noun = self.r.choice(nouns)
        adj = self.r.choice(adjectives) if self.r.random() < 0.5 else None
        if noun in UNCOUNTABLE:
            return " ".join(w for w in ("some", adj, noun) if w)
        roll = self.r.random()
        if roll < 0.3:
            return " ".join(w for w in (self.r.choice(NUMBERS), adj, _plural(noun)) if w)
        if roll < 0.55:
            return " ".join(w for w in ("the", adj, noun) if w)
        return _a(" ".join(w for w in (adj, noun) if w))

    def obj(self, kind):
        if kind == "food":
            return self.counted(FOODS, FOOD_ADJ)
        if kind == "thing":
            return self.counted(THINGS, THING_ADJ)
        if kind == "readable":
            return self.counted(READABLE, THING_ADJ)
        if kind == "box":
            return self.counted(["box", "letter", "door", "window", "bottle", "basket"], THING_ADJ)
        if kind == "animal":
            return self.animal(definite=self.r.random() < 0.5)[0]
        return self.person(definite=self.r.random() < 0.7)[0]

    def place(self):
        prep = self.r.choice(list(PLACES))
        return f"{prep} the {self.r.choice(PLACES[prep])}"

    def extras(self):
        parts = []
        if self.r.random() < 0.6:
            parts.append(self.place())
        if self.r.random() < 0.3:
            parts.append(self.r.choice(TIMES))
        return "".join(" " + p for p in parts)

    def predicate(self, is_person, animal_noun=None):
        if is_person and self.r.random() < 0.65:
            verb = self.r.choice(list(TRANSITIVE))
            return f"{verb} {self.obj(self.r.choice(TRANSITIVE[verb]))}{self.extras()}"
        if not is_person and animal_noun in ANIMAL_SOUNDS and self.r.random() < 0.3:
            return ANIMAL_SOUNDS[animal_noun] + self.extras()
        verbs = PERSON_INTRANSITIVE if is_person else ANIMAL_INTRANSITIVE
        return self.r.choice(verbs) + self.extras()

    def sentence(self, subject=None):
        """One sentence (no final full stop) and the (subject, pronoun, is_person, animal) it was about.

        A new character is named in full; one carried over from the last sentence may be a pronoun."""
        fresh = subject is None
        if fresh:
            if self.r.random() < 0.7:
                s, p = self.person()
                subject = (s, p, True, None)
            else:
                s, p, noun = self.animal()
                subject = (s, p, False, noun)
        s, p, is_person, noun = subject
        head = s if fresh or self.r.random() < 0.6 else p
        text = f"{head} {self.predicate(is_person, noun)}"
        roll = self.r.random()
        if roll < 0.25:
            vi = self.r.choice(PERSON_INTRANSITIVE)
            text += " " + self.r.choice(REASONS).format(p=p, f=self.r.choice(FEELINGS), vi=vi)
        elif roll < 0.35:
            text = f"{self.r.choice(TIMES)}, {text}"
        elif roll < 0.45 and is_person:
            text = f"{head} was {self.r.choice(FEELINGS)}, so {p} {self.predicate(True)}"
        return text, subject

    def document(self, n_sentences):
        sentences, subject = [], None
        for _ in range(n_sentences):
            keep = subject is not None and self.r.random() < 0.5  # stay with the same character
            text, subject = self.sentence(subject if keep else None)
            sentences.append(text)
        return sentences


def _cap(s):
    return s[:1].upper() + s[1:]


def join_plain(sentences):
    return " ".join(_cap(s) + "." for s in sentences)


def join_pirate(sentences):
    return " ".join(f"Arr, {s}, matey!" for s in sentences)


def generate_documents(n, seed=0, min_sentences=2, max_sentences=6, style="plain"):
    """n documents (strings), each a few sentences; the same for the same (n, seed) on every machine."""
    rng = random.Random(seed)
    g = _Grammar(rng)
    join = {"plain": join_plain, "pirate": join_pirate}[style]
    return [join(g.document(rng.randint(min_sentences, max_sentences))) for _ in range(n)]


def restyle(document):
    """A plain document -> the pirate style ("The cat slept." -> "Arr, the cat slept, matey!")."""
    sentences = [s.strip() for s in document.split(".") if s.strip()]
    return join_pirate([s[0].lower() + s[1:] for s in sentences])


if __name__ == "__main__":
    for doc in generate_documents(5, seed=0):
        print(doc)
    print(generate_documents(2, seed=1, style="pirate")[0])
