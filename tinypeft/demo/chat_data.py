"""The chat demo's instruction set: short questions with computed answers, every answer as {"answer": "..."}.

Each kind of question is a template filled from a list; the lists are split so that held-out questions
use numbers, countries and words the training set never shows, and two kinds ("spell backwards", "how
many letters") appear only in the held-out set: the format has to carry over to new questions.
"""
import json

import numpy as np

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "Japan": "Tokyo", "China": "Beijing", "Canada": "Ottawa", "Egypt": "Cairo", "Kenya": "Nairobi",
    "Peru": "Lima", "Chile": "Santiago", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki",
    "Poland": "Warsaw", "Greece": "Athens", "Austria": "Vienna", "Ireland": "Dublin", "Russia": "Moscow",
    "India": "New Delhi", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Mexico": "Mexico City",
    "Argentina": "Buenos Aires", "Turkey": "Ankara", "Hungary": "Budapest", "Denmark": "Copenhagen",
    "Belgium": "Brussels", "Cuba": "Havana",
}
OPPOSITES = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "happy": "sad", "light": "dark",
    "early": "late", "open": "closed", "full": "empty", "hard": "soft", "old": "new", "rich": "poor",
    "wet": "dry", "loud": "quiet", "strong": "weak", "tall": "short", "thick": "thin", "clean": "dirty",
    "cheap": "expensive", "first": "last", "win": "lose", "push": "pull", "left": "right", "true": "false",
}
LEGS = {"dog": 4, "cat": 4, "bird": 2, "spider": 8, "ant": 6, "horse": 4, "chicken": 2, "bee": 6,
        "cow": 4, "duck": 2, "beetle": 6, "octopus": 8, "goat": 4, "penguin": 2, "sheep": 4, "crab": 10}
COLORS = {"the sky on a clear day": "blue", "fresh grass": "green", "snow": "white", "a ripe banana": "yellow",
          "coal": "black", "a ripe tomato": "red", "an orange": "orange", "a lemon": "yellow",
          "a polar bear": "white", "a crow": "black", "a lime": "green", "a strawberry": "red"}
WORDS = ["apple", "river", "planet", "garden", "pencil", "window", "silver", "rocket", "candle", "forest",
         "tiger", "music", "bottle", "castle", "dragon", "lemon", "mirror", "pillow", "summer", "turtle"]


def _split(items, rng, test_fraction=0.3):
    items = list(items)
    rng.shuffle(items)
    k = max(1, int(len(items) * test_fraction))
    return items[k:], items[:k]


def make_chat_data(seed=0, n_train=400):
    """{"train": [...], "test": [...]} of {"question", "answer"}; answer is the JSON string the model must write."""
    rng = np.random.default_rng(seed)
    split = {name: _split(sorted(table), rng) for name, table in
             (("capital", CAPITALS), ("opposite", OPPOSITES), ("legs", LEGS), ("color", COLORS))}
    numbers = list(range(2, 60))
    num_train, num_test = _split(numbers, rng)
    words_train, words_test = _split(WORDS, rng)

    def one(kind, part):
        if kind == "plus":
            pool = num_train if part == 0 else num_test
            a, b = rng.choice(pool, 2)
            return f"What is {a} plus {b}?", str(a + b)
        if kind == "times":
            pool = [n for n in (num_train if part == 0 else num_test) if n < 13] or [7, 8]
            a, b = rng.choice(pool, 2)
            return f"What is {a} times {b}?", str(a * b)
        if kind == "capital":
            c = rng.choice(split["capital"][part])
            return f"What is the capital of {c}?", CAPITALS[c]
        if kind == "opposite":
            w = rng.choice(split["opposite"][part])
            return f"What is the opposite of '{w}'?", OPPOSITES[w]
        if kind == "legs":
            a = rng.choice(split["legs"][part])
            return f"How many legs does a {a} have?", str(LEGS[a])
        if kind == "color":
            t = rng.choice(split["color"][part])
            return f"What color is {t}?", COLORS[t]
        if kind == "uppercase":
            w = rng.choice(words_train if part == 0 else words_test)
            return f"Write the word '{w}' in capital letters.", w.upper()
        if kind == "backwards":  # held-out only
            w = rng.choice(words_test)
            return f"Spell the word '{w}' backwards.", w[::-1]
        if kind == "letters":  # held-out only
            w = rng.choice(words_test)
            return f"How many letters are in the word '{w}'?", str(len(w))
        raise ValueError(kind)

    train_kinds = ["plus", "times", "capital", "opposite", "legs", "color", "uppercase"]
    test_kinds = train_kinds + ["backwards", "letters"]
    out = {"train": [], "test": []}
    for name, kinds, n, part in (("train", train_kinds, n_train, 0), ("test", test_kinds, 45, 1)):
        seen = set()
        for i in range(n):
            for _ in range(20):  # a new question if one is left in this kind's pool
                q, a = one(kinds[i % len(kinds)], part)
                if q not in seen:
                    break
            seen.add(q)
            out[name].append({"question": q, "answer": json.dumps({"answer": a})})
    return out
