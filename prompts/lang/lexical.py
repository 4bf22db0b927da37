"""Lexical patterns shared by several languages: string literals, C-style comments, definitions."""

from __future__ import annotations

import re

DQ = r'"(?:[^"\\\n]|\\.)*"'
"""A double-quoted string on one line."""
SQ = r"'(?:[^'\\\n]|\\.)*'"
"""A single-quoted string on one line."""
C_COMMENTS = r"//[^\n]*|/\*[\s\S]*?(?:\*/|\Z)"
"""A line comment or a block comment (possibly unterminated)."""
C_LEXICAL = re.compile(rf"{C_COMMENTS}|{DQ}|'(?:\\.[^'\n]{{0,8}}|[^'\\\n])'|`[^`]*`")
"""Comments and literals of C-like languages (a Rust lifetime `'a` is no character literal)."""
C_LIKE_DEFINED = re.compile(
    r"^[ \t]*(?!(?:return|new|throw|else|case|await|yield|delete|goto)\b)"
    r"(?:[\w<>\[\],.*&:]+[ \t]+)+[*&]*(?:\w+::)*([^\W\d]\w*)[ \t]*\([^;\n]*$",
    re.MULTILINE,
)
"""`int foo(int x) {`, `public void run() {`: a type, a name, a parameter list, no `;`."""
