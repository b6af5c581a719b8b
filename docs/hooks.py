"""MkDocs hook: publish the committed benchmark files (plots, CSV, JSON) under `bench/` in the site.

Result tables are included into pages with pymdownx.snippets; their plots and raw files stay where the
benchmark wrote them (`bench/<run>/`), and this hook adds them to the site as static files at the same
path, so a page links `bench/<run>/accuracy_vs_calls.png` (relative to the docs root) and a re-run
benchmark updates the site. Markdown under `bench/` is not added: it would become pages of its own.
"""

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PUBLISHED_SUFFIXES = {".png", ".svg", ".csv", ".json"}


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    for path in sorted((root / "bench").rglob("*")):
        if path.is_file() and path.suffix in PUBLISHED_SUFFIXES:
            files.append(
                File(
                    path.relative_to(root).as_posix(),
                    src_dir=str(root),
                    dest_dir=config.site_dir,
                    use_directory_urls=config.use_directory_urls,
                )
            )
    return files
