"""Generates the message reference of ``docs/protocol.md`` from the Structs.

``python -m codec.docgen docs/protocol.md`` rewrites the part of the file between
the generated-section markers; ``--check`` exits 1 if it would change anything.
A test runs the check, so the document cannot drift from the code.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import msgspec
import msgspec.inspect as mi

from .errors import CloseCode, ErrorCode
from .messages import (
    EVENTS,
    RECORDS,
    REPLIES,
    REQUESTS,
    STREAM_FRAMES,
    STREAM_REQUESTS,
)

__all__ = ["BEGIN", "END", "render_reference", "update_document"]

BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m codec.docgen docs/protocol.md -->"
END = "<!-- END GENERATED REFERENCE -->"


def _type_name(t: mi.Type) -> str:
    if isinstance(t, mi.UnionType):
        return " | ".join(_type_name(x) for x in t.types)
    if isinstance(t, mi.ListType):
        return f"list[{_type_name(t.item_type)}]"
    if isinstance(t, mi.DictType):
        return f"map[{_type_name(t.key_type)}, {_type_name(t.value_type)}]"
    if isinstance(t, mi.StructType):
        return t.cls.__name__
    names = {
        mi.NoneType: "null",
        mi.BoolType: "bool",
        mi.IntType: "int",
        mi.FloatType: "float",
        mi.StrType: "str",
        mi.BytesType: "bin",
    }
    name = names.get(type(t), type(t).__name__.removesuffix("Type").lower())
    limits = []
    for attr, label in (
        ("min_length", "len >= "),
        ("max_length", "len <= "),
        ("ge", ">= "),
        ("le", "<= "),
        ("pattern", "matches "),
    ):
        value = getattr(t, attr, None)
        if value is not None:
            limits.append(f"{label}{value}")
    return f"{name} ({', '.join(limits)})" if limits else name


def _describe(cls: type) -> list[str]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    tag = getattr(getattr(cls, "__struct_config__", None), "tag", None)
    title = f"### `{cls.__name__}`"
    lines = [title, ""]
    doc = inspect.getdoc(cls) or ""
    if doc:
        lines += [doc, ""]
    if tag is not None:
        lines += [f'`type`: `"{tag}"`', ""]
    if info.fields:
        lines += ["| field | type | required | default |", "|---|---|---|---|"]
        for field in info.fields:
            default = ""
            if not field.required:
                value = field.default
                if value is msgspec.NODEFAULT:
                    value = field.default_factory() if field.default_factory else ""
                default = f"`{value!r}`"
            lines.append(
                f"| `{field.encode_name}` | {_type_name(field.type)} | "
                f"{'yes' if field.required else 'no'} | {default} |"
            )
        lines.append("")
    return lines


def render_reference() -> str:
    """The generated part of docs/protocol.md."""
    out: list[str] = []
    sections = [
        ("Requests (control stream)", REQUESTS),
        ("Stream requests (first frame of a new stream)", STREAM_REQUESTS),
        ("Replies", REPLIES),
        ("Events (server to client, no `rid`)", EVENTS),
        ("Frames inside transfer streams", STREAM_FRAMES),
        ("Records (inside messages)", RECORDS),
    ]
    for heading, classes in sections:
        out += [f"## {heading}", ""]
        for cls in classes:
            out += _describe(cls)
    out += ["## Error codes", "", "| code | name | meaning |", "|---|---|---|"]
    for code in ErrorCode:
        out.append(f"| {int(code)} | `{code.name}` | {_member_doc(ErrorCode, code)} |")
    out += ["", "## QUIC close codes", "", "| code | name | meaning |", "|---|---|---|"]
    for close in CloseCode:
        out.append(
            f"| 0x{int(close):x} | `{close.name}` | {_member_doc(CloseCode, close)} |"
        )
    out.append("")
    return "\n".join(out)


def _member_doc(enum_cls: type, member: object) -> str:
    """The docstring written under an enum member in the source."""
    source = inspect.getsource(enum_cls)
    name = member.name  # type: ignore[attr-defined]
    marker = f"    {name} = "
    start = source.find(marker)
    if start < 0:
        return ""
    rest = source[start:].split("\n", 1)[1].lstrip()
    if not rest.startswith('"""'):
        return ""
    doc = rest[3:].split('"""', 1)[0]
    return " ".join(doc.split())


def update_document(text: str) -> str:
    """Return ``text`` with its generated section replaced by a fresh one."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise ValueError("the document has no generated-section markers")
    return text[: start + len(BEGIN)] + "\n\n" + render_reference() + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codec.docgen")
    parser.add_argument("document", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = args.document.read_text()
    updated = update_document(text)
    if args.check:
        if updated != text:
            print(
                f"{args.document} is out of date: run python -m codec.docgen "
                f"{args.document}",
                file=sys.stderr,
            )
            return 1
        return 0
    args.document.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
