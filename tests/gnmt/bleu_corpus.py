"""A newstest2014-sized German test set made up from a seed: 3003 detokenised reference lines and hypotheses
that differ from them as a system's output does, with what the tokenisers part on (German quotes and dashes,
decimal commas, thousands points, per cent and currency signs, m², ½, a backslash).

Deterministic (Python's `random` with a fixed seed), so a score of it computed once with sacreBLEU 1.2.10 can
be pinned in a test. Also runnable: `python -m tests.gnmt.bleu_corpus DIR` writes DIR/ref.de and DIR/hyp.de.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

LINES = 3003  # newstest2014's
WORDS = (  # noqa: SIM905 - a word list reads better as text
    "der die das und in zu den von mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er "
    "hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur "
    "bis mehr durch man sein wurde sei Prozent Jahr Jahren Regierung Menschen Stadt Polizei Euro Millionen "
    "Milliarden Präsident Zeit Land Deutschland Bundesregierung Unternehmen Woche Mittwoch Donnerstag Freitag "
    "Grüße Straße Größe Fußball Mädchen Bürgermeister Öffentlichkeit Übersetzung Ärzte München Köln Zürich "
    "gegenüber schließlich außerdem müssen können sollen dürfen wäre hätte würde über früher später heute "
    "gestern morgen Quadratmeter Wohnung Fläche Temperatur Grad Kilometer Minister Parlament Gericht Urteil "
    "Entscheidung Bericht Studie Experten Zahl Kinder Familie Schule Universität Krankenhaus Behörden Angaben"
).split()
NUMBERS = ("3,5", "1.000", "2014", "25", "12,7", "1.250.000", "0,3", "90", "7", "2,5")
ATTACHED = (",", ".", ":", ";", "!", "?", "%")
# Written into a line as they stand in news text: signs and the No-category numbers the tokenisers treat apart.
SPECIAL = ("m²", "km²", "½", "¼", "³", "€", "$", "§", "°C", "+", "=", "\\", "&", "#", "@", "~")


def _reference(rng: random.Random) -> str:
    words: list[str] = []
    for _ in range(rng.randint(5, 40)):
        roll = rng.random()
        if roll < 0.08:
            words.append(rng.choice(NUMBERS) + (" %" if rng.random() < 0.3 else ""))
        elif roll < 0.12:
            words.append(rng.choice(SPECIAL))
        else:
            word = rng.choice(WORDS)
            words.append(word.capitalize() if rng.random() < 0.1 else word)
        if rng.random() < 0.1:
            words[-1] += rng.choice(ATTACHED)
    if rng.random() < 0.15:
        start = rng.randrange(len(words))
        words[start] = "„" + words[start]
        words[-1] += "“"
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), rng.choice(("–", "—", "...", "(", ")", "'")))
    line = " ".join(words)
    return line[0].upper() + line[1:] + rng.choice((".", ".", ".", "?", "!", "\"", " 2014."))


def _hypothesis(rng: random.Random, reference: str) -> str:
    words = reference.split()
    out = []
    for word in words:
        roll = rng.random()
        if roll < 0.12:
            continue  # dropped
        if roll < 0.27:
            out.append(rng.choice(WORDS))  # another word
        elif roll < 0.32:
            out.append(word.upper())  # case only: uncased BLEU keeps it
        else:
            out.append(word)
        if rng.random() < 0.04:
            out.append(rng.choice(WORDS))  # inserted
    if len(out) > 3 and rng.random() < 0.3:
        k = rng.randrange(len(out) - 1)
        out[k], out[k + 1] = out[k + 1], out[k]
    return " ".join(out) or words[0]


def corpus(seed: int = 2014) -> tuple[list[str], list[str]]:
    """(hypotheses, references), LINES each."""
    rng = random.Random(seed)
    references = [_reference(rng) for _ in range(LINES)]
    return [_hypothesis(rng, line) for line in references], references


def write(folder: Path, seed: int = 2014) -> tuple[Path, Path]:
    hypotheses, references = corpus(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyp.de").write_text("\n".join(hypotheses) + "\n", encoding="utf-8")
    (folder / "ref.de").write_text("\n".join(references) + "\n", encoding="utf-8")
    return folder / "hyp.de", folder / "ref.de"


if __name__ == "__main__":
    print(*write(Path(sys.argv[1])))
