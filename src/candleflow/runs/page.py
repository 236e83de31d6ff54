"""The one HTML writer of every report page (a run, a panel run, a walk-forward study, runs
compared): fragments whose every value is escaped unless it is markup built here.

Run folders travel (a colleague's run, a downloaded study), so every string in them is hostile:
a `<script>` in metrics.json or metadata.json must reach the page as text. Escaping is therefore
the default, not a call each field must remember: `h(template, *values)` escapes each value with
MarkupSafe (Jinja2's own escaper) unless it is already `Markup` made by these functions, and the
page itself is a Jinja2 template with autoescape on, so a plain string handed to it shows as text.
Templates are literals in our code; a value never becomes a template (tests/test_structure.py
refuses an f-string handed to Markup or h)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

import jinja2
from markupsafe import Markup


def h(template: str, /, *args: Any, **kwargs: Any) -> Markup:
    """An HTML fragment: `template` is markup from our code, every argument is escaped unless it
    is Markup (a fragment made by h, join, table or img). Format specs apply as in str.format."""
    return Markup(template).format(*args, **kwargs)


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    """Fragments joined; a plain string among them is escaped."""
    return Markup(sep).join(parts)


def fmt(value: Any) -> str:
    """How every number appears in reports: ints with separators, floats with 4 decimals, and a
    dash where there is no value (a baseline has no ratio to itself), never the word None."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def table(rows: Iterable[Sequence[Any]], header: Sequence[str], cls: str = "") -> Markup:
    """A table; each cell shown with fmt (a Markup cell as it is) and escaped."""
    head = join(h("<th>{}</th>", c) for c in header)
    body = join(
        h("<tr>{}</tr>", join(h("<td>{}</td>", c if isinstance(c, Markup) else fmt(c)) for c in r)) for r in rows
    )
    return h(
        '<div class="scroll"><table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>',
        cls,
        head,
        body,
    )


def img(png: bytes, alt: str) -> Markup:
    """A PNG embedded as a data URI, with its caption."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    return h('<figure><img alt="{0}" src="{1}"><figcaption>{0}</figcaption></figure>', alt, uri)


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_ENV.policies["json.dumps_kwargs"] = {"sort_keys": False, "allow_nan": True}

_PAGE = _ENV.from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
table.metrics tbody tr:first-child, table.backtest tbody tr:first-child { font-weight: 600; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
.figs { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; } img { max-width: 100%; }
figcaption { font-size: 12px; color: #555; } .lead { color: #555; }
</style></head>
<body>
{% for section in sections %}{{ section }}
{% endfor %}<script type="application/json" id="candleflow-metrics">{{ embedded|tojson }}</script>
<script>
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  document.body.dataset.imagesLoaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.dataset.images = imgs.length;
  document.body.dataset.tables = document.querySelectorAll("table").length;
});
</script>
</body></html>
"""
)


def render_page(title: str, sections: Iterable[Any], embedded: Any) -> str:
    """The whole page: the title and each section (a plain string shows as text), and `embedded`
    as JSON in a script element (`<`, `>`, `&` and `'` written as \\u escapes, so no value can
    close the element)."""
    return _PAGE.render(title=title, sections=list(sections), embedded=embedded)


__all__ = ["Markup", "fmt", "h", "img", "join", "render_page", "table"]
