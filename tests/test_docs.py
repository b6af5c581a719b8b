"""The front page and the documentation site's settings.

`make docs` (mkdocs build --strict) checks the links between the pages of docs/; README.md lies outside that
build, so its links are checked here, with its size and the two commands it must show.
"""

import re
from pathlib import Path

import yaml
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def _anchors(markdown_file: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", markdown_file.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {slugify(re.sub(r"[`*]", "", heading), "-") for heading in HEADING.findall(text)}


def test_readme_is_a_short_front_page_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 12 * 1024
    assert "make run" in text and "make test" in text


def test_every_relative_link_of_the_readme_reaches_a_file_and_its_heading() -> None:
    broken = []
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = ROOT / path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading '{anchor}' in {path}")
    assert not broken, broken


def test_the_site_builds_strictly_offline_with_automatic_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert "nav" not in config  # pages added under docs/ appear without editing mkdocs.yml
    assert config["strict"] is True
    assert config["theme"]["font"] is False  # no web fonts fetched from a CDN
