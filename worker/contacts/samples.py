"""Deterministic sample segments for the demo, the tests and the benchmarks.

Why in the package: ``segment-export demo`` must work from a fresh install with nothing else on
disk. Every profile knows by construction whether its email is valid and which person it is, so tests
can compute the expected list contents without calling our own validator.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret",
         "Linus", "Guido", "Katherine", "Dennis", "Hedy", "Claude", "Sophie", "John", "Niklaus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman",
        "Berners-Lee", "Hamilton", "Torvalds", "van Rossum", "Johnson", "Ritchie", "Lamarr", "Shannon",
        "Wilson", "McCarthy", "Wirth"]
BAD_EMAILS = ["no-at-sign.example.com", "two@@example.com", "trailing@example", "spa ce@example.com",
              "(paren)@example.com", "@example.com", "semi;colon@example.com", "user@.com"]
TIERS = ["bronze", "silver", "gold", "platinum"]


@dataclass
class Segment:
    """Profiles to write, plus what a correct sync must leave in the list."""

    profiles: list[dict]
    expected: dict[str, dict]  # normalized email -> the profile that must be in AC
    invalid: int
    duplicates: int


def person(i: int, version: int = 0) -> dict:
    """Person number i; a higher ``version`` changes their first name and phone."""
    return {
        "CustomerId": f"C{i:08d}",
        "EmailAddress": f"User{i}.Person@Example.com" if i % 7 == 0 else f"user{i}@example.com",
        "FirstName": FIRST[(i + version) % len(FIRST)] + ("" if version == 0 else f"-v{version}"),
        "LastName": LAST[(i * 7) % len(LAST)],
        "Phone": f"+1555{(i * 7919 + version) % 10_000_000:07d}",
        "LoyaltyTier": TIERS[i % len(TIERS)],
    }


def email_of(p: dict) -> str:
    return p["EmailAddress"].strip().lower()


def make_segment(ids: Iterable[int], *, invalid_rate: float = 0.0, duplicate_rate: float = 0.0,
                 versions: dict[int, int] | None = None, seed: int = 1) -> Segment:
    """A segment of the given people, with malformed-email rows and duplicate rows mixed in."""
    versions = versions or {}
    profiles: list[dict] = []
    expected: dict[str, dict] = {}
    invalid = duplicates = 0
    for i in ids:
        p = person(i, versions.get(i, 0))
        rng = random.Random(seed * 1_000_003 + i)  # per person, so a person stays (in)valid across refreshes
        if rng.random() < invalid_rate:
            p["EmailAddress"] = BAD_EMAILS[i % len(BAD_EMAILS)].replace("example", f"ex{i}")
            invalid += 1
            profiles.append(p)
            continue
        profiles.append(p)
        expected[email_of(p)] = p
        if rng.random() < duplicate_rate:
            dup = dict(p)
            dup["EmailAddress"] = "  " + p["EmailAddress"].upper() + " "  # same person, messier spelling
            profiles.append(dup)
            duplicates += 1
    return Segment(profiles, expected, invalid, duplicates)


def evolve(ids: list[int], *, changed: float, removed: float, new: float, next_id: int,
           seed: int = 2) -> tuple[list[int], dict[int, int], set[int], set[int]]:
    """The next refresh: (ids, versions, changed ids, removed ids); new people get ids from next_id."""
    rng = random.Random(seed)
    shuffled = list(ids)
    rng.shuffle(shuffled)
    n = len(ids)
    gone = set(shuffled[: int(n * removed)])
    bumped = set(shuffled[int(n * removed): int(n * removed) + int(n * changed)])
    kept = [i for i in ids if i not in gone]
    kept.extend(range(next_id, next_id + int(n * new)))
    return kept, dict.fromkeys(bumped, 1), bumped, gone


def write_jsonl(path: str | Path, profiles: Iterable[dict], *, compress: bool = False) -> Path:
    """Write profiles as JSON Lines (gzip if asked), in chunks to keep memory flat."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        chunk: list[bytes] = []
        for p in profiles:
            chunk.append(orjson.dumps(p))
            if len(chunk) >= 10_000:
                fh.write(b"\n".join(chunk) + b"\n")
                chunk.clear()
        if chunk:
            fh.write(b"\n".join(chunk) + b"\n")
    return path


def stream_people(n: int, start: int = 0) -> Iterator[dict]:
    """n valid, unique people without building a list (benchmarks of large snapshots)."""
    for i in range(start, start + n):
        yield person(i)
