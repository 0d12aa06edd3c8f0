"""Word lists and movie texts of the synthetic MovieLens generator (:mod:`bench.synth`).

Genres and their frequencies are those of ml-latest-small's ``movies.csv`` (movies per genre);
the words are made up so that a movie's title, overview and tags carry its genre and niche.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

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


def movie_frame(
    rng: np.random.Generator,
    movie_ids: npt.NDArray[np.int64],
    motifs: npt.NDArray[np.int64],
    genres: npt.NDArray[np.bool_],
) -> pd.DataFrame:
    """Titles, genre strings, links and overviews of every movie (vectorised string ops).

    ``motifs`` holds four motif word indices per movie (its niche's); ``genres`` is the
    movies x :data:`GENRES` membership matrix.
    """
    n = movie_ids.size
    names = np.array(GENRES, dtype=object)
    joined = pd.Series([""] * n, dtype=object)
    for g in np.argsort(names):  # 19 column-wise concatenations, alphabetical as in MovieLens
        joined = joined + np.where(genres[:, g], names[g] + "|", "")
    genre_text = joined.str.rstrip("|").replace("", "(no genres listed)")
    # A movie's lead genre picks the noun of its title and the words of its overview.
    lead = np.where(genres.any(axis=1), np.argmax(genres * rng.random(genres.shape), axis=1), 0)
    words = np.array(GENRE_WORDS, dtype=object)  # genres x 8
    pick = rng.integers(0, words.shape[1], size=(n, 3))
    adjectives = np.array(ADJECTIVES, dtype=object)[rng.integers(0, len(ADJECTIVES), size=(n, 2))]
    motif_words = np.array(MOTIFS, dtype=object)[motifs]
    years = np.clip(2018 - np.floor(rng.exponential(16.0, n)), 1902, 2018).astype(np.int64)
    year_text = pd.Series(years.astype(str), dtype=object)
    no_year = rng.random(n) < 0.001
    title = (
        pd.Series(adjectives[:, 0]).str.capitalize()
        + " "
        + pd.Series(words[lead, pick[:, 0]]).str.capitalize()
    )
    title = title + np.where(no_year, "", " (" + year_text + ")")
    overview = (
        "A " + adjectives[:, 1] + " story of " + motif_words[:, 0] + " and " + motif_words[:, 1]
        + ", where " + words[lead, pick[:, 1]] + " meets " + words[lead, pick[:, 2]]
        + ". Expect " + motif_words[:, 2] + " and " + motif_words[:, 3] + "."
    )  # fmt: skip
    overview = np.where(rng.random(n) < 0.022, "", overview)  # 2.2% have none, as in the real set
    tmdb = (movie_ids * 3 + rng.integers(0, 3, n)).astype(object)
    tmdb[rng.random(n) < 0.0008] = ""  # 8 of 9,742 real links have no tmdbId
    imdb = pd.Series(movie_ids + 100_000).astype(str).str.zfill(7)
    return pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": title,
            "genres": genre_text,
            "imdbId": imdb,
            "tmdbId": tmdb,
            "overview": overview,
        }
    )
