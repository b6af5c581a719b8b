"""Reports that render offline: the Great Expectations Data Docs and `dvc plots` pages, made self-contained.

Both pages load scripts and styles from CDNs (bootstrap-table fills the Data Docs tables, Vega draws the
plots), so offline they are empty; no installed package ships those libraries, so the pages are rewritten
as static HTML instead: each Data Docs table rendered from the rows its script holds (the CDN tags removed,
the logo from `static/images`), each Vega-Lite chart drawn with matplotlib as a PNG in `static/`.

    python -m ckd.reports plots [--out dvc_plots]   # `make plots`: dvc plots show, then the static page
"""

from __future__ import annotations

import argparse
import ast
import functools
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OFFLINE_MARK = '<meta name="ckd-offline" content="static">'
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']https?://[^>]*>\s*</script>\s*", re.I)
_EXTERNAL_STYLE = re.compile(r"<link[^>]*\bhref\s*=\s*[\"']https?://[^\"']*[\"'][^>]*>\s*", re.I)
_GX_LOGO = re.compile(r"(<img[^>]*\bsrc\s*=\s*\")https://great-expectations-web-assets[^\"]*/([\w.-]+\.png)[^\"]*\"")
_TABLE = re.compile(r"(<table\s+id=\"(?P<id>[^\"]+)\"[^>]*data-toggle=\"table\"[^>]*>)\s*</table>", re.S)
_STATIC_STYLE = """<style>
  table.ckd-static { border-collapse: collapse; margin: 0.5em 0; }
  table.ckd-static th, table.ckd-static td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }
  .tab-pane { display: block !important; opacity: 1 !important; }
</style>"""


def _strip_external_assets(page: str) -> str:
    page = _EXTERNAL_STYLE.sub(lambda m: "" if "stylesheet" in m.group(0) else m.group(0), page)
    return _EXTERNAL_SCRIPT.sub("", page)


def _literal_after(script: str, key: str) -> Any:
    """The Python-literal list GX writes on the line `key: [...]` of a bootstrapTable call (None if absent)."""
    match = re.search(rf"^\s*{key}:\s*(\[.*\]),?\s*$", script, re.M)
    return None if match is None else ast.literal_eval(match.group(1))


def _cell(row: dict[str, Any], field: str) -> str:
    """The cell as GX wrote it; one that is only an icon (Font Awesome, from a CDN) shows GX's text for it."""
    value, text = row.get(field), row.get(f"_{field}_text")
    cell = value if isinstance(value, str) else html.escape("" if value is None else str(value))
    return html.escape(str(text)) if text is not None and not re.sub(r"<[^>]*>", "", cell).strip() else cell


def _static_table(page: str, match: re.Match[str]) -> str:
    """`<table>` filled with the rows of its bootstrapTable script (the same page), or left as it was."""
    if (start := page.find(f"$('#{match.group('id')}').bootstrapTable(")) < 0:
        return match.group(0)
    script = page[start : page.find("</script>", start)]
    columns, rows = _literal_after(script, "columns"), _literal_after(script, "data")
    if columns is None or rows is None:
        return match.group(0)
    columns = [c for c in columns if str(c.get("visible", "true")).lower() != "false"]
    head = "".join(f"<th>{html.escape(str(c.get('title', c['field'])))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = [_cell(row, c["field"]) for c in columns]
        if (link := row.get("_table_row_link_path")) and cells:
            cells[0] = f'<a href="{html.escape(link)}">{cells[0] or "open"}</a>'
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    opening = match.group(1).replace('data-toggle="table"', "").replace('class="', 'class="ckd-static ', 1)
    return f"{opening}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _offline_docs_page(page: str, images: str) -> str:
    """One Data Docs page, static: tables filled, the logo from `images` (relative), no CDN asset."""
    static = _TABLE.sub(functools.partial(_static_table, page), page)
    static = _strip_external_assets(_GX_LOGO.sub(lambda m: f'{m.group(1)}{images}/{m.group(2)}"', static))
    return static.replace("</head>", f"{OFFLINE_MARK}\n{_STATIC_STYLE}\n</head>", 1)


def offline_data_docs(docs_dir: str | Path) -> list[Path]:
    """Rewrite every page of a Data Docs site in place so that it renders with no network (see the module
    docstring); idempotent. Returns the pages rewritten."""
    docs_dir = Path(docs_dir)
    rewritten = []
    for page_path in sorted(docs_dir.rglob("*.html")):
        page = page_path.read_text(encoding="utf-8")
        if OFFLINE_MARK in page:
            continue
        images = os.path.relpath(docs_dir / "static" / "images", page_path.parent).replace(os.sep, "/")
        page_path.write_text(_offline_docs_page(page, images), encoding="utf-8")
        rewritten.append(page_path)
    return rewritten


_VEGA_DIV = re.compile(
    r"<div id\s*=\s*\"(?P<id>[^\"]+)\">\s*<script type\s*=\s*\"text/javascript\">\s*"
    r"var spec = (?P<rest>.*?)</script>\s*</div>",
    re.S,
)


def _encodings(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every `encoding` in a Vega-Lite spec (layers included), outermost first."""
    if isinstance(spec.get("encoding"), dict):
        yield spec["encoding"]
    for layer in spec.get("layer", []) or []:
        if isinstance(layer, dict):
            yield from _encodings(layer)


def _field(encoding: dict[str, Any], channel: str, key: str = "field") -> str | None:
    value = encoding.get(channel)
    return value.get(key) if isinstance(value, dict) else None


def render_spec_png(spec: dict[str, Any], out: Path) -> int:
    """Draw a Vega-Lite line/point spec's inline values with matplotlib, one line per revision and file;
    the number of lines (0 for a spec without inline values or an x/y field)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = (spec.get("data") or {}).get("values")
    encodings = list(_encodings(spec))
    x, y = (next(filter(None, (_field(e, axis) for e in encodings)), None) for axis in "xy")
    if not values or not x or not y:
        return 0
    channels = ("color", "strokeDash", "shape", "detail")  # the series: DVC's revision, file / field
    group_by = list(dict.fromkeys(name for e in encodings for c in channels if (name := _field(e, c))))
    series: dict[str, list[tuple[float, float]]] = {}
    for row in values:
        try:
            point = (float(row.get(x)), float(row.get(y)))
        except (TypeError, ValueError):
            continue  # not a number: no point
        label = " ".join(str(row[k]) for k in group_by if k in row) or y
        series.setdefault(label, []).append(point)
    if not series:
        return 0
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    for label, points in sorted(series.items()):
        axes.plot(*zip(*sorted(points)), marker=".", label=label)
    title = spec.get("title")
    axes.set_title(title.get("text", "") if isinstance(title, dict) else str(title or ""))
    axes.set_xlabel(next(filter(None, (_field(e, "x", "title") for e in encodings)), x))
    axes.set_ylabel(next(filter(None, (_field(e, "y", "title") for e in encodings)), y))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return len(series)


def offline_plots(page_path: str | Path) -> int:
    """Rewrite a `dvc plots show` page: each Vega chart drawn as static/<id>.png in its place (one that cannot
    be drawn says so, its spec in a <details> block), no CDN script; the number of charts drawn."""
    page_path = Path(page_path)
    page = page_path.read_text(encoding="utf-8")
    if OFFLINE_MARK in page:
        return 0
    drawn = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal drawn
        spec, _ = json.JSONDecoder().raw_decode(match.group("rest"))
        name = re.sub(r"[^\w.-]+", "_", match.group("id"))
        if render_spec_png(spec, page_path.parent / "static" / f"{name}.png"):
            drawn += 1
            return f'<div id="{html.escape(match.group("id"))}"><img src="static/{name}.png" alt="{name}"></div>'
        dump = html.escape(json.dumps(spec)[:20000])
        return f"<div><p>{name}: not drawable offline (not a line chart)</p><details><pre>{dump}</pre></details></div>"

    page = _strip_external_assets(_VEGA_DIV.sub(replace, page)).replace("</head>", f"{OFFLINE_MARK}\n</head>", 1)
    note = (
        "<p><em>Static rendering (matplotlib) of DVC's Vega plots, readable offline; "
        "<code>dvc plots show</code> alone gives the interactive page, which loads Vega from a CDN.</em></p>"
    )
    page_path.write_text(page.replace("<body>", f"<body>\n{note}", 1), encoding="utf-8")
    return drawn


def _plot_files(dvc_yaml: Path) -> list[str]:
    """The data files the `plots:` section of dvc.yaml names (x and y files)."""
    import yaml

    files: list[str] = []
    for entry in (yaml.safe_load(dvc_yaml.read_text()) or {}).get("plots", []) or []:
        for name, definition in entry.items() if isinstance(entry, dict) else [(entry, {})]:
            y = (definition or {}).get("y")
            files += list(y) if isinstance(y, dict) else [name]
    return files


def plots_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ckd.reports plots", description="dvc plots show, readable offline")
    p.add_argument("--out", default="dvc_plots", help="the folder of the page (default: dvc_plots)")
    args = p.parse_args(argv)
    dvc_yaml = Path("dvc.yaml")
    if not dvc_yaml.is_file():
        print("ckd plots: nothing to plot: no dvc.yaml here (run it from the project's root)")
        return 0
    if not any(Path(f).exists() for f in _plot_files(dvc_yaml)):
        print("ckd plots: nothing to plot yet: no training curves (metrics/train/plots); run `make run` first")
        return 0
    shown = subprocess.run(["dvc", "plots", "show", "--out", args.out], capture_output=True, text=True)
    if shown.returncode != 0:
        last = (shown.stderr.strip().splitlines() or ["(no message)"])[-1]
        print(f"ckd plots: error: dvc plots show failed: {last}", file=sys.stderr)
        return 2
    page = Path(args.out) / "index.html"
    drawn = offline_plots(page)
    print(f"ckd plots: {page} ({drawn} charts drawn as PNG in {page.parent / 'static'}, readable offline)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["plots"]:
        print("usage: python -m ckd.reports plots [--out DIR]", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(plots_main(sys.argv[2:]))
