"""A small English-German corpus from a toy grammar, run through the real preprocessing.

The grammar has what makes translation more than word lookup: German gender and case on articles
and adjectives, verb-second word order after a fronted adverb, and possessives. A few pairs are
noise the cleaning must drop (too many words, bad length ratio, a word over 1000 characters,
characters outside latin-1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from html import escape
from pathlib import Path

from common.atomic import write_text_atomic
from translation.layout import LANGS, TEST_SETS, Lang, Wmt16Layout
from translation.preprocess import RawSources, preprocess
from translation.steps import Step

SAMPLE_MERGES = 240
DEFAULT_TRAIN_PAIRS = 3000
DEFAULT_TEST_PAIRS = 120


@dataclass(frozen=True)
class Noun:
    en: str
    de: str
    gender: str  # m, f, n


NOUNS = (
    Noun("cat", "Katze", "f"), Noun("dog", "Hund", "m"), Noun("house", "Haus", "n"),
    Noun("car", "Auto", "n"), Noun("bird", "Vogel", "m"), Noun("tree", "Baum", "m"),
    Noun("woman", "Frau", "f"), Noun("man", "Mann", "m"), Noun("child", "Kind", "n"),
    Noun("book", "Buch", "n"), Noun("street", "Straße", "f"), Noun("door", "Tür", "f"),
    Noun("teacher", "Lehrer", "m"), Noun("apple", "Apfel", "m"), Noun("city", "Stadt", "f"),
    Noun("ship", "Schiff", "n"),
)
ADJECTIVES = (
    ("red", "rot"), ("big", "groß"), ("small", "klein"), ("old", "alt"), ("new", "neu"),
    ("green", "grün"), ("quick", "schnell"), ("blue", "blau"), ("young", "jung"), ("beautiful", "schön"),
)
VERBS = (
    ("sees", "sieht"), ("likes", "mag"), ("finds", "findet"), ("hears", "hört"), ("paints", "malt"),
    ("visits", "besucht"), ("buys", "kauft"), ("carries", "trägt"),
)
ADVERBS = (("today", "heute"), ("yesterday", "gestern"), ("often", "oft"))
NAMES = ("Anna", "Peter", "Maria", "Paul")
_ARTICLE = {("m", "nom"): "der", ("m", "acc"): "den", ("f", "nom"): "die", ("f", "acc"): "die",
            ("n", "nom"): "das", ("n", "acc"): "das"}


def _noun_phrase(rng: random.Random, case: str) -> tuple[str, str]:
    noun = rng.choice(NOUNS)
    article = _ARTICLE[noun.gender, case]
    if rng.random() < 0.6:
        adj_en, adj_de = rng.choice(ADJECTIVES)
        ending = "en" if (noun.gender, case) == ("m", "acc") else "e"
        return f"the {adj_en} {noun.en}", f"{article} {adj_de}{ending} {noun.de}"
    return f"the {noun.en}", f"{article} {noun.de}"


def _subject(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.2:
        name, noun = rng.choice(NAMES), rng.choice(NOUNS)
        return f"{name}'s {noun.en}", f"{name}s {noun.de}"
    return _noun_phrase(rng, "nom")


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:]


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    """One (English, German) pair from the grammar."""
    subj_en, subj_de = _subject(rng)
    obj_en, obj_de = _noun_phrase(rng, "acc")
    verb_en, verb_de = rng.choice(VERBS)
    if rng.random() < 0.3:
        adv_en, adv_de = rng.choice(ADVERBS)
        en, de = f"{adv_en} {subj_en} {verb_en} {obj_en}.", f"{adv_de} {verb_de} {subj_de} {obj_de}."
    else:
        en, de = f"{subj_en} {verb_en} {obj_en}.", f"{subj_de} {verb_de} {obj_de}."
    en, de = _capitalise(en), _capitalise(de)
    if rng.random() < 0.1:
        name = rng.choice(NAMES)
        en, de = f'{name} says: "{en}"', f'{name} sagt: "{de}"'
    return en, de


def noise_pair(rng: random.Random) -> tuple[str, str]:
    """A pair the cleaning must drop."""
    en, de = sentence_pair(rng)
    kind = rng.choice(("long", "ratio", "word", "latin1"))
    if kind == "long":
        return " ".join([en] * 12), " ".join([de] * 12)
    if kind == "ratio":
        return "Yes.", " ".join([de] * 3)
    if kind == "word":
        blob = "data" + "Qm9va" * 200  # one token of 1004 letters, as base64 pasted into a web page
        return f"{en} {blob}", f"{de} {blob}"
    return en.replace(".", " for 5 €."), de.replace(".", " für 5 €.")


def corpus(rng: random.Random, pairs: int, noise: float) -> list[tuple[str, str]]:
    return [noise_pair(rng) if rng.random() < noise else sentence_pair(rng) for _ in range(pairs)]


def _sgm(name: str, lang: Lang, lines: list[str], ref: bool) -> str:
    tag = "refset" if ref else "srcset"
    head = f'<{tag} setid="{name}" srclang="any"' + (f' trglang="{lang}">' if ref else ">")
    segs = "".join(f'<seg id="{i}">{escape(line, quote=False)}</seg>\n' for i, line in enumerate(lines, 1))
    doc = f'<doc sysid="{"ref" if ref else "src"}" docid="sample" genre="news" origlang="en">\n<p>\n'
    return f"{head}\n{doc}{segs}</p>\n</doc>\n</{tag}>\n"


def write_raw(raw_dir: Path, seed: int, train_pairs: int, test_pairs: int) -> RawSources:
    """Training text and SGM test sets shaped like the extracted WMT16 archives."""
    train = corpus(random.Random(f"{seed}-train"), train_pairs, noise=0.03)
    train_paths: dict[Lang, list[Path]] = {}
    for i, lang in enumerate(LANGS):
        path = raw_dir / f"sample.de-en.{lang}"
        write_text_atomic(path, "".join(pair[i] + "\n" for pair in train))
        train_paths[lang] = [path]
    sgm: dict[tuple[str, Lang], Path] = {}
    for name in TEST_SETS:
        pairs = corpus(random.Random(f"{seed}-{name}"), test_pairs, noise=0.0)
        for i, lang in enumerate(LANGS):
            role = "ref" if lang == "en" else "src"
            path = raw_dir / f"{name}-deen-{role}.{lang}.sgm"
            write_text_atomic(path, _sgm(name, lang, [p[i] for p in pairs], ref=role == "ref"))
            sgm[name, lang] = path
    return RawSources(train=train_paths, sgm=sgm)


def build_sample(data_dir: Path, seed: int = 0, train_pairs: int = DEFAULT_TRAIN_PAIRS,
                 test_pairs: int = DEFAULT_TEST_PAIRS, workers: int | None = None) -> list[Step]:
    """Write the sample's raw inputs and preprocess them into the trainer's layout under `data_dir`."""
    layout = Wmt16Layout(Path(data_dir))
    sources = write_raw(layout.root / "sample-raw", seed, train_pairs, test_pairs)
    return preprocess(layout, sources, merges=SAMPLE_MERGES, workers=workers)
