"""HTML bodies with their plain-text twins, built from the same pieces: the text is what a reader of the HTML sees."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

NBSP = "\u00a0"

# Mail clients and widgets leave these in ticket HTML; none of it is visible text.
HIDDEN = (
    "<style>p.sig{color:#888;font-size:11px}</style>",
    "<script>window.trackOpen&&trackOpen('mail-7f3a')</script>",
    '<img src="https://pixel.example.invalid/o.gif" width="1" height="1" alt="">',
)


@dataclass(frozen=True)
class Bold:
    """A bold label followed by plain text, on one line."""

    label: str
    rest: str


Line = str | Bold


def _esc(text: str) -> str:
    return html.escape(text, quote=True).replace(NBSP, "&nbsp;")


def _plain(text: str) -> str:
    return text.replace(NBSP, " ")


def _line_html(line: Line) -> str:
    if isinstance(line, Bold):
        return f"<b>{_esc(line.label)}</b>{_esc(line.rest)}"
    return _esc(line)


def _line_text(line: Line) -> str:
    return _plain(line.label + line.rest) if isinstance(line, Bold) else _plain(line)


@dataclass
class Markup:
    """Accumulates blocks; `render()` gives (html, text)."""

    _html: list[str] = field(default_factory=list)
    _text: list[str] = field(default_factory=list)

    def para(self, *lines: Line) -> Markup:
        self._html.append("<p>" + "<br>".join(_line_html(line) for line in lines) + "</p>")
        self._text.append("\n".join(_line_text(line) for line in lines))
        return self

    def heading(self, text: str) -> Markup:
        self._html.append(f"<h3>{_esc(text)}</h3>")
        self._text.append(_plain(text))
        return self

    def bullets(self, items: list[str], ordered: bool = False) -> Markup:
        tag = "ol" if ordered else "ul"
        self._html.append(f"<{tag}>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + f"</{tag}>")
        self._text.append("\n".join(_plain(i) for i in items))
        return self

    def hidden(self, which: int) -> Markup:
        self._html.append(HIDDEN[which % len(HIDDEN)])
        return self

    def render(self) -> tuple[str, str]:
        return "<div>" + "".join(self._html) + "</div>", "\n".join(self._text)
