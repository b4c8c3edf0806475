"""The product's behaviour is documented inside the repository: every reference resolves here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# "SPEC" and a section number: the numbered sections of a specification the repository does not carry.
SPEC_REF = re.compile(r"\bSPEC \d")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _tracked(*suffixes: str) -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if n.endswith(suffixes) and (ROOT / n).is_file()]


def test_no_reference_to_a_spec_section_outside_the_repository():
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in _tracked(".py", ".md", ".bicep", ".json", ".sh")
        if "docs/spec/" not in p.as_posix()
        for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if SPEC_REF.search(line)
    ]
    assert not offenders, f"cite docs/spec/<page>.md instead: {offenders}"


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for page in _tracked(".md"):
        for target in MD_LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).resolve().exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_the_spec_index_names_every_section_page():
    index = (ROOT / "docs/spec/README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs/spec").glob("*.md") if p.name != "README.md")
    assert pages and all(name in index for name in pages)
