"""The ACAV-1M datasheet, read from ``datasheet.yaml`` next to this module.

The YAML file holds the datasheet of the ACAV-1M supplementary material
(questions and the source's answers, our notes, the Croissant RAI properties
each answer informs, the citation and references) and its transcription rules.
This module only gives it types: the dataset card (`acav1m_hf.card`) renders
every entry and the Croissant (`acav1m_hf.croissant`) fills its Responsible-AI
(``rai:``) fields from `rai_values`, so the card and the JSON-LD can never say
different things.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True)
class Entry:
    """One question of the datasheet with the source's answer.

    ``note`` is never the source's words: it is this project's remark (a
    contradiction, a truncation, where else the document answers).
    """

    question: str
    answer: str
    note: str | None = None
    rai: tuple[str, ...] = ()

    @property
    def answered(self) -> bool:
        return self.answer != NOT_ANSWERED


@dataclass(frozen=True)
class Section:
    title: str
    entries: tuple[Entry, ...]


def _section(data: dict[str, Any]) -> Section:
    """A section of the YAML file; an entry without ``answer`` is one the source leaves unanswered."""
    entries = tuple(
        Entry(e["question"], e.get("answer", NOT_ANSWERED), e.get("note"), tuple(e.get("rai", ())))
        for e in data["entries"]
    )
    return Section(data["title"], entries)


_DATA = yaml.safe_load((resources.files(__package__) / "datasheet.yaml").read_text(encoding="utf-8"))

NOT_ANSWERED: str = _DATA["not_answered"]
TITLE: str = _DATA["title"]
NAME: str = _DATA["name"]
WEBSITE: str = _DATA["website"]
LICENSE_ID: str = _DATA["license"]["id"]
"""Hugging Face Hub license identifier."""
LICENSE_NAME: str = _DATA["license"]["name"]
LICENSE_URL: str = _DATA["license"]["url"]
DATE_PUBLISHED: str = _DATA["date_published"]
CITATION: str = _DATA["citation"]
"""BibTeX of the dataset."""
DESCRIPTION: str = _DATA["description"]
ALGORITHM: str = _DATA["algorithm"]
AUTHOR_STATEMENT: str = _DATA["author_statement"]
HOSTING: str = _DATA["hosting"]
REFERENCES: dict[str, str] = _DATA["references"]
"""The source's references that the datasheet and Algorithm 1 cite, by their bracketed numbers."""
SUMMARY: Section = _section(_DATA["summary"])
"""Section 1 of the source, the summary that precedes the datasheet questions."""
SECTIONS: tuple[Section, ...] = tuple(_section(s) for s in _DATA["sections"])
"""The seven sections of the datasheet, every question in the source's order."""
EXTRA_RAI: dict[str, tuple[str, ...]] = {prop: tuple(texts) for prop, texts in _DATA["extra_rai"].items()}
"""RAI values that the source states outside the question-and-answer datasheet (Algorithm 1, Section 5)."""
RAI_PROPERTIES: tuple[str, ...] = tuple(_DATA["rai_properties"])
"""The 20 properties of the Croissant RAI vocabulary (``http://mlcommons.org/croissant/RAI/``)."""


def all_entries() -> list[tuple[str, Entry]]:
    """Every entry with the title of its section, summary first."""
    return [(s.title, e) for s in (SUMMARY, *SECTIONS) for e in s.entries]


def rai_values() -> dict[str, list[str]]:
    """For each RAI property that the source answers, the statements that answer it, in source order.

    A datasheet answer is given with its question, because a bare "No." only
    means something next to what was asked.
    """
    values: dict[str, list[str]] = {}
    for section, entry in all_entries():
        if not entry.answered:
            continue
        question = entry.question.split("?")[0] + "?"  # the question proper, without the template's guidance
        text = entry.answer if section == SUMMARY.title else f"{question} {entry.answer}"
        for prop in entry.rai:
            values.setdefault(prop, []).append(text)
    for prop, texts in EXTRA_RAI.items():
        values.setdefault(prop, []).extend(texts)
    unknown = set(values) - set(RAI_PROPERTIES)
    assert not unknown, f"not RAI properties: {sorted(unknown)}"
    for texts in values.values():  # a JSON-LD value has no reference list: resolve the [n] it cites
        cited = sorted(set(re.findall(r"\[\d+\]", " ".join(texts))), key=lambda r: int(r[1:-1]))
        texts.extend(f"{ref} {REFERENCES[ref]}" for ref in cited if ref != "[1]")
    return {p: values[p] for p in RAI_PROPERTIES if p in values}
