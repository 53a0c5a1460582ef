"""Scraping helpers for the observability tests."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> {sorted label pairs: value}."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for k, v in samples.get(name, {}).items() if set(labels.items()) <= set(k))


def family_names(text: str) -> set[str]:
    """Every sample name and family name a scrape exposes."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "info": ("_info",)}
    names: set[str] = set()
    for fam in text_string_to_metric_families(text):  # a labelled family with no child yet has no samples
        names.add(fam.name)
        names.update(fam.name + s for s in suffixes.get(fam.type, ()))
        names.update(s.name for s in fam.samples)
    return names
