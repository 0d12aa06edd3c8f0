"""The README stays a short entry point: at most 10,000 characters, linking every page of
docs/, and every relative link of the README and docs/ names a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def relative_links(page: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(page.read_text(encoding="utf-8"))
        if "://" not in target and not target.startswith("mailto:")
    ]


def test_the_readme_is_short() -> None:
    assert len((REPO / "README.md").read_text(encoding="utf-8")) <= 10_000


def test_the_readme_links_every_doc() -> None:
    linked = {(REPO / target).resolve() for target in relative_links(REPO / "README.md")}
    missing = [doc.name for doc in sorted((REPO / "docs").glob("*.md")) if doc not in linked]
    assert not missing, f"README.md does not link {missing}"


def test_relative_links_name_existing_files() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = [
        f"{page.relative_to(REPO)} -> {target}"
        for page in pages
        for target in relative_links(page)
        if not (page.parent / target).exists()
    ]
    assert not broken
