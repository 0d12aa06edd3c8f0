"""Word lists of the synthetic MovieLens generator (:mod:`bench.synth`).

Genres and their frequencies are those of ml-latest-small's ``movies.csv`` (movies per genre);
the words are made up so that a movie's title, overview and tags carry its genre and niche.
"""

from __future__ import annotations

import numpy as np

GENRES = (
    "Drama", "Comedy", "Thriller", "Action", "Romance", "Adventure", "Crime", "Sci-Fi",
    "Horror", "Fantasy", "Children", "Animation", "Mystery", "Documentary", "War", "Musical",
    "Western", "IMAX", "Film-Noir",
)  # fmt: skip

GENRE_FREQUENCY = np.array(
    [4361, 3756, 1894, 1828, 1596, 1263, 1199, 980, 978, 779, 664, 611, 573, 440, 382, 334,
     167, 158, 87],
    dtype=np.float64,
)  # fmt: skip
"""Movies per genre in ml-latest-small, in the order of :data:`GENRES`."""

GENRE_WORDS = (
    ("family", "secret", "grief", "marriage", "brother", "verdict", "journey", "memory"),
    ("wedding", "roommate", "prank", "vacation", "neighbor", "blunder", "party", "uncle"),
    ("conspiracy", "hostage", "stalker", "witness", "betrayal", "deadline", "pursuit", "trap"),
    ("explosion", "mercenary", "heist", "showdown", "commando", "chase", "bomb", "rescue"),
    ("lovers", "kiss", "romance", "heartbreak", "proposal", "sweetheart", "letter", "summer"),
    ("treasure", "expedition", "island", "quest", "map", "jungle", "voyage", "explorer"),
    ("gangster", "detective", "robbery", "mob", "cartel", "con", "smuggler", "precinct"),
    ("spaceship", "android", "alien", "galaxy", "cyborg", "wormhole", "colony", "laser"),
    ("ghost", "demon", "zombie", "curse", "slasher", "haunting", "vampire", "ritual"),
    ("wizard", "dragon", "kingdom", "sorcerer", "elf", "prophecy", "enchantment", "sword"),
    ("puppy", "schoolkid", "toy", "birthday", "camp", "friendship", "pony", "treehouse"),
    ("cartoon", "talking", "critter", "toon", "doodle", "fable", "bunny", "robot"),
    ("riddle", "clue", "disappearance", "suspect", "puzzle", "cipher", "alibi", "locket"),
    ("archive", "interview", "footage", "biography", "nature", "history", "report", "truth"),
    ("battalion", "trench", "soldier", "siege", "general", "frontline", "medal", "platoon"),
    ("song", "stage", "dance", "chorus", "melody", "broadway", "band", "rhythm"),
    ("sheriff", "outlaw", "ranch", "saloon", "gunslinger", "frontier", "cattle", "stagecoach"),
    ("giant", "spectacle", "panorama", "epic", "vista", "odyssey", "marvel", "colossus"),
    ("femme", "shadows", "noir", "gumshoe", "dame", "rain", "cigarette", "doublecross"),
)  # fmt: skip
"""Eight nouns per genre, in the order of :data:`GENRES`."""

ADJECTIVES = (
    "silent", "broken", "last", "hidden", "golden", "dark", "wild", "lost", "crimson",
    "frozen", "endless", "little", "savage", "bright", "forgotten", "midnight", "burning",
    "quiet", "restless", "hollow", "electric", "distant", "secret", "iron", "paper", "velvet",
    "bitter", "sweet", "lonely", "fearless",
)  # fmt: skip

MOTIFS = (
    "pirates", "robots", "time travel", "boxing", "cooking", "chess", "surfing", "vampires",
    "submarines", "dinosaurs", "jazz", "ballet", "hackers", "samurai", "cowboys", "spies",
    "astronauts", "witches", "werewolves", "clowns", "mafia", "lawyers", "nurses", "teachers",
    "trains", "horses", "volcanoes", "hurricanes", "poker", "baseball", "football", "hockey",
    "skiing", "mountains", "deserts", "oceans", "prisons", "hospitals", "circuses", "casinos",
    "zombies", "ninjas", "knights", "gladiators", "vikings", "pharaohs", "aliens", "ghosts",
    "dolls", "mirrors", "twins", "amnesia", "royalty", "elections", "journalists", "rock bands",
    "street racing", "kung fu", "submarine warfare", "bank heists", "art forgery", "magic tricks",
    "road trips", "high school", "college", "small towns", "big cities", "paris", "tokyo",
    "new york", "london", "the arctic", "the jungle", "the desert", "outer space", "the future",
    "the sixties", "the war", "the wild west", "the middle ages", "ancient rome", "a heist crew",
    "a road movie", "a courtroom", "a cruise ship", "an island", "a lighthouse", "a haunted hotel",
    "a monster", "a serial killer", "a chef", "a detective", "an orphan", "a dog", "a cat",
    "a dragon", "a princess", "a pop star", "a boxer", "a boy band",
)  # fmt: skip
"""Motif words; each niche gets four, used in overviews and tags."""

TAGS = (
    "atmospheric", "twist ending", "funny", "dark comedy", "visually appealing", "classic",
    "thought-provoking", "based on a book", "quirky", "great soundtrack", "predictable",
    "slow", "overrated", "underrated", "cult film", "violent", "feel-good", "tearjerker",
    "stylish", "witty", "surreal", "nonlinear", "philosophical", "mindfuck", "satire",
    "true story", "franchise", "remake", "sequel", "cheesy", "beautiful", "boring",
)  # fmt: skip
"""Generic user tags."""
