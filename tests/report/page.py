"""A rendered report read back with the standard library's HTML parser, as a small tree."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

VOID = frozenset({"meta", "link", "br", "img", "input", "hr", "wbr", "source", "col", "area"})


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        wanted = {k.rstrip("_"): v for k, v in attrs.items()}
        return [
            n
            for n in self.walk()
            if n.tag == tag and all(v in n.attrs.get(k, "").split() or n.attrs.get(k) == v
                                    for k, v in wanted.items())
        ]  # fmt: skip

    def find(self, tag: str, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag} {attrs}>"
        return found[0]

    def by_id(self, id_: str) -> Node:
        found = [n for n in self.walk() if n.attrs.get("id") == id_]
        assert len(found) == 1, f"{len(found)} elements with id {id_!r}"
        return found[0]

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def raw(self) -> str:
        """The text exactly as written (``text`` normalises white space)."""
        return "".join(c if isinstance(c, str) else c.raw() for c in self.children)

    def argv(self) -> list[str]:
        """A shown command (lines continued with a backslash) as its words."""
        return shlex.split(self.raw().replace("\\\n", " "))

    def cells(self) -> list[list[str]]:
        """A table's body rows as lists of cell texts."""
        return [[td.text() for td in tr.find_all("td")] for tr in self.find("tbody").find_all("tr")]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


def figures(root: Node) -> dict[str, dict[str, Any]]:
    """Every figure's data, by the id of its JSON block."""
    return {
        n.attrs["id"]: json.loads("".join(map(str, n.children)))
        for n in root.find_all("script", type="application/json")
    }


def figure_of(root: Node, plot: Node) -> dict[str, Any]:
    """The figure a ``.plot`` element draws."""
    return figures(root)[plot.attrs["data-figure"]]
