"""Write topics.jsonl, the demo's data set: short sentences about four topics, made from templates.

    python -m tinypeft.demo.make_topics          # rewrites tinypeft/demo/topics.jsonl (deterministic)

The sentences are written by this script, for tinypeft; they come from no outside corpus. Each class has
its own words (a sport, a dish, a storm, a laptop) dropped into sentence frames, and most frames are
shared by all four classes ("I spent the whole evening ..."), so the frame says nothing about the
topic: a classifier has to read the content words. 100 sentences a class; 25 of each go to the test
split. Every sentence is unique, so no test sentence is also a training sentence.
"""
import json
import random
from pathlib import Path

LABELS = ["sports", "cooking", "weather", "computers"]
PER_CLASS, TEST_PER_CLASS, SEED = 100, 25, 0
OUT = Path(__file__).with_name("topics.jsonl")

# Frames shared by every topic: {x} is a topic phrase (a noun phrase or a clause, see PHRASES).
SHARED = [
    "I spent the whole evening on {x}.",
    "My neighbour keeps talking about {x}.",
    "Yesterday was all about {x}.",
    "Nobody in my family cares about {x}.",
    "We argued for an hour about {x}.",
    "The article this morning was about {x}.",
    "Honestly, I could talk all day about {x}.",
    "She sent me a long message about {x}.",
    "The podcast episode was mostly about {x}.",
    "My weekend plans depend on {x}.",
    "Our teacher asked us to write about {x}.",
    "Tell me more about {x}.",
]

TOPICS = {
    "sports": {
        "phrases": [
            "the {team} winning the {event}", "watching the {sport} final", "the {sport} match on Saturday",
            "the new {sport} coach", "practising my {skill}", "the {player} who scored twice",
            "tickets for the {event}", "the penalty in extra time", "training for the {race}",
            "the {team} losing at home", "the referee's terrible call", "joining the local {sport} club",
        ],
        "own": [
            "The {player} scored in the last minute of the {sport} game.",
            "Our {sport} team finally won the {event}.",
            "The {team} need a new goalkeeper before the {event}.",
            "I ran the {race} in under two hours.",
            "The {sport} season starts next week and the stadium is sold out.",
            "He broke his ankle during {sport} practice.",
            "The crowd cheered when the {team} took the lead.",
            "She has been working on her {skill} every morning.",
        ],
        "sport": ["football", "tennis", "basketball", "hockey", "rugby", "cricket", "volleyball", "baseball"],
        "team": ["home team", "visitors", "champions", "underdogs", "national side", "reserves"],
        "event": ["league title", "championship", "cup final", "tournament", "playoffs", "derby"],
        "player": ["striker", "captain", "goalkeeper", "rookie", "defender", "pitcher"],
        "skill": ["serve", "free throws", "backhand", "sprint starts", "penalty kicks", "batting stance"],
        "race": ["marathon", "half marathon", "relay", "ten kilometre race", "triathlon"],
    },
    "cooking": {
        "phrases": [
            "baking {dish}", "a recipe for {dish}", "the {ingredient} in the sauce", "roasting {ingredient}",
            "how long to simmer the {dish}", "chopping {ingredient} for dinner", "the new {tool}",
            "seasoning the {dish} with {spice}", "making {dish} from scratch", "burning the {dish}",
            "the {spice} that ruined the soup", "kneading dough for {dish}",
        ],
        "own": [
            "Add a pinch of {spice} before the {dish} goes in the oven.",
            "I burned the {dish} because I forgot the {tool}.",
            "Simmer the {ingredient} for twenty minutes and stir often.",
            "The {dish} needs more {spice} and a little butter.",
            "Preheat the oven and grease the {tool}.",
            "Slice the {ingredient} thinly and fry it in olive oil.",
            "My grandmother's {dish} recipe uses fresh {ingredient}.",
            "Whisk the eggs, then fold in the {ingredient}.",
        ],
        "dish": ["lasagna", "banana bread", "risotto", "apple pie", "curry", "pancakes", "stew", "sourdough"],
        "ingredient": ["garlic", "onions", "mushrooms", "carrots", "potatoes", "tomatoes", "spinach"],
        "spice": ["cumin", "paprika", "cinnamon", "oregano", "nutmeg", "black pepper"],
        "tool": ["baking tray", "cast iron pan", "mixing bowl", "pressure cooker", "whisk", "rolling pin"],
    },
    "weather": {
        "phrases": [
            "the {storm} coming this weekend", "the {temp} forecast", "how much {precip} fell overnight",
            "the {wind} wind along the coast", "checking the forecast for {precip}", "the {temp} heatwave",
            "waiting for the {storm} to pass", "the flood warning", "the fog over the valley",
            "the {season} frost", "clouds rolling in before the {storm}", "the humidity this {season}",
        ],
        "own": [
            "Heavy {precip} is expected tomorrow with {wind} winds.",
            "The {storm} knocked down trees all over town.",
            "Temperatures will drop below freezing this {season}.",
            "It was {temp} and sunny, without a single cloud.",
            "The forecast says {precip} until Thursday.",
            "A {wind} breeze kept the afternoon cool.",
            "The {storm} warning was lifted after midnight.",
            "Bring an umbrella, the sky looks like {precip}.",
        ],
        "storm": ["thunderstorm", "hurricane", "blizzard", "tropical storm", "hailstorm", "cold front"],
        "temp": ["scorching", "chilly", "mild", "freezing", "unusually warm", "humid"],
        "precip": ["rain", "snow", "sleet", "drizzle", "hail", "showers"],
        "wind": ["strong", "gusty", "icy", "gentle", "northerly", "howling"],
        "season": ["winter", "spring", "autumn", "summer"],
    },
    "computers": {
        "phrases": [
            "upgrading the {part} in my laptop", "the {os} update", "fixing a bug in my {lang} code",
            "the {part} overheating", "installing {software}", "a slow {device}",
            "compiling the kernel", "debugging the {lang} script", "the {device} that keeps crashing",
            "backing up my {part}", "learning {lang}", "the new {part} benchmarks",
        ],
        "own": [
            "My {device} crashed again after the {os} update.",
            "I added more RAM and the {device} boots much faster now.",
            "The {lang} program throws an error when it reads the file.",
            "Reinstalling {software} fixed the driver problem.",
            "The {part} fan is loud whenever I compile code.",
            "He wrote a {lang} script to rename all the files.",
            "The {os} installer could not find the {part}.",
            "Restart the {device} and clear the cache.",
        ],
        "part": ["graphics card", "hard drive", "motherboard", "processor", "SSD", "power supply"],
        "os": ["Linux", "Windows", "macOS", "BIOS", "firmware"],
        "lang": ["Python", "Rust", "JavaScript", "C++", "Java", "Go"],
        "software": ["the compiler", "the database server", "the antivirus", "the web browser", "the IDE"],
        "device": ["laptop", "desktop", "server", "tablet", "router", "workstation"],
    },
}


def fill(template, vocab, rng):
    """Replace each {slot} with a random word of that slot (plain str.format with drawn values)."""
    while "{" in template:
        start = template.index("{")
        slot = template[start + 1:template.index("}", start)]
        template = template.replace("{" + slot + "}", rng.choice(vocab[slot]), 1)
    return template


def sentences(label, rng):
    """PER_CLASS unique sentences of one topic: half from shared frames, half from the topic's own."""
    vocab = TOPICS[label]
    out, seen = [], set()
    while len(out) < PER_CLASS:
        if len(out) % 2 == 0:
            text = rng.choice(SHARED).format(x=fill(rng.choice(vocab["phrases"]), vocab, rng))
        else:
            text = fill(rng.choice(vocab["own"]), vocab, rng)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def build():
    """[{"text", "label", "split"}, ...]: per class, the first PER_CLASS - TEST_PER_CLASS are "train"."""
    rng = random.Random(SEED)
    rows = []
    for label in LABELS:
        texts = sentences(label, rng)
        rng.shuffle(texts)
        for i, text in enumerate(texts):
            rows.append({"text": text, "label": label, "split": "test" if i < TEST_PER_CLASS else "train"})
    rng.shuffle(rows)
    return rows


if __name__ == "__main__":
    rows = build()
    with open(OUT, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"wrote {len(rows)} sentences to {OUT}")
