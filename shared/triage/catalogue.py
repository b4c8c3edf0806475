"""Microsoft's published alert catalogues as data, and the scoring rules derived from them (issue 13).

``config/alert-catalogue.json`` (versioned, with its sources and the date they were read) lists the
published alert types of Defender for Cloud (every plan), Entra ID Protection's risk detections and the
Defender XDR incident kinds that reach Sentinel, each in a *family* (credential theft, crypto-mining,
brute force, data handling …). A family carries the effect on the score (floor / ceiling) and whether
it is a *named P1 detection*. The rules file names the catalogue (``"catalogue"``, relative to the rules
file); :func:`load_rules` reads both and appends the derived rules after the file's own, so the rules
file's documented format keeps working and a SOC can still override anything with its own rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.errors import ConfigurationError
from shared.partners import load_json_model
from shared.scoring import RuleMatch, ScoringRule, ScoringRules

PriorityName = Literal["P1", "P2", "P3", "P4", "by severity"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Config):
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    url: str = Field(pattern=r"^https://")
    # when the page was read, and which published file (repository:path@commit) the entries were checked against
    retrieved: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    published: str | None = None


class Family(_Config):
    """What an alert of this family is worth (docs/spec/triage.md)."""

    priority: PriorityName
    description: str = Field(min_length=1)
    floor: int | None = Field(None, ge=1, le=10)
    ceiling: int | None = Field(None, ge=1, le=10)
    namedP1: bool = False

    @property
    def has_effect(self) -> bool:
        return self.floor is not None or self.ceiling is not None


class Entry(_Config):
    """One published alert: matched by its alert type, by words of its name, or (DLP) by its product."""

    source: str = Field(min_length=1)
    plan: str = Field(min_length=1)
    title: str = Field(min_length=1)
    severity: Literal["Informational", "Low", "Medium", "High"]
    tactics: list[str] = Field(default_factory=list)
    family: str = Field(min_length=1)
    alertType: str | None = None
    techniques: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    titleContains: list[str] = Field(default_factory=list)
    # compared with the published page when the catalogue was last edited (else: as published, unverified)
    checked: bool = False


class TechniqueEntry(_Config):
    technique: str = Field(pattern=r"^T\d{4}(\.\d{3})?$")
    name: str
    family: str


class TacticEntry(_Config):
    tactic: str
    effect: str


class AlertCatalogue(_Config):
    """The catalogue file."""

    version: str = Field(min_length=1)
    retrieved: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    description: str = ""
    sources: list[Source] = Field(min_length=1)
    families: dict[str, Family]
    techniques: list[TechniqueEntry] = Field(default_factory=list)
    tactics: list[TacticEntry] = Field(default_factory=list)
    entries: list[Entry] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> AlertCatalogue:
        sources = {s.id for s in self.sources}
        for i, e in enumerate(self.entries):
            if e.family not in self.families:
                raise ValueError(f"entries[{i}].family {e.family!r} is not a family of the catalogue")
            if e.source not in sources:
                raise ValueError(f"entries[{i}].source {e.source!r} is not one of the catalogue's sources")
            if not (e.alertType or e.titleContains or e.products):
                raise ValueError(f"entries[{i}] cannot match anything: give alertType, titleContains or products")
        for i, t in enumerate(self.techniques):
            if t.family not in self.families:
                raise ValueError(f"techniques[{i}].family {t.family!r} is not a family of the catalogue")
        return self

    @classmethod
    def load(cls, path: str | Path) -> AlertCatalogue:
        return load_json_model(path, cls, "SCORING_RULES_FILE (catalogue)")

    def derived_rules(self) -> list[ScoringRule]:
        """One rule per family and way of matching (alert type, name, product, MITRE technique).

        Floors come before ceilings, so a data-handling or policy family caps whatever a broad rule raised.
        Technique rules are never named P1 detections: a technique tag is as coarse as a tactic.
        """
        ordered = sorted(self.families.items(), key=lambda kv: (kv[1].ceiling is not None and kv[1].floor is None,))
        rules: list[ScoringRule] = []
        for name, fam in ordered:
            if not fam.has_effect:
                continue
            entries = [e for e in self.entries if e.family == name]
            types = _unique(e.alertType for e in entries if e.alertType)
            words = _unique(w for e in entries for w in e.titleContains)
            products = _unique(p for e in entries if not (e.alertType or e.titleContains) for p in e.products)
            techniques = _unique(t.technique for t in self.techniques if t.family == name)
            for suffix, match, named in (
                ("", RuleMatch(alertTypes=types) if types else None, fam.namedP1),
                ("-name", RuleMatch(titleContains=words) if words else None, fam.namedP1),
                ("-product", RuleMatch(products=products) if products else None, fam.namedP1),
                ("-technique", RuleMatch(techniques=techniques) if techniques else None, False),
            ):
                if match is None:
                    continue
                rules.append(
                    ScoringRule(
                        id=f"catalogue-{name}{suffix}",
                        description=f"{fam.description} [catalogue {self.version}]",
                        match=match,
                        floor=fam.floor,
                        ceiling=fam.ceiling,
                        namedP1=named,
                    )
                )
        return rules


def _unique(values) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def catalogue_path(rules_path: str | Path, rules: ScoringRules) -> Path | None:
    if not rules.catalogue:
        return None
    path = Path(rules.catalogue)
    return path if path.is_absolute() else Path(rules_path).resolve().parent / path


def load_rules(path: str | Path) -> ScoringRules:
    """The rules file, with the rules derived from the catalogue it names appended (validated at load)."""
    rules = ScoringRules.load(path)
    cat_path = catalogue_path(path, rules)
    if cat_path is None:
        return rules
    catalogue = AlertCatalogue.load(cat_path)
    derived = catalogue.derived_rules()
    clash = {r.id for r in rules.rules} & {r.id for r in derived}
    if clash:
        raise ConfigurationError(
            f"SCORING_RULES_FILE {path}: rule ids {', '.join(sorted(clash))} clash with the catalogue's derived rules"
        )
    return rules.model_copy(
        update={"rules": [*rules.rules, *derived], "version": f"{rules.version}+catalogue.{catalogue.version}"}
    )
