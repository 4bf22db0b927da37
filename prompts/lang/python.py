"""Python: grammar, lexical facts, node types and definition queries."""

from __future__ import annotations

import builtins
import keyword
import re

from .lexical import DQ, SQ
from .spec import LanguageSpec, NodeTypes, ScopeKind, scope_table, words

PYTHON = LanguageSpec(
    name="python",
    module="tree_sitter_python",
    function="language",
    extensions=(".py", ".pyi", ".pyw"),
    line_comment="#",
    block_comment=None,
    quotes=('"""', "'''", '"', "'"),
    long_strings=('"""', "'''"),
    indent_blocks=True,
    keywords=frozenset(
        [*keyword.kwlist, *keyword.softkwlist, *dir(builtins), "self", "cls", "super"]
    ),
    family="python",
    nodes=NodeTypes(
        scopes=scope_table(
            {
                ScopeKind.CLASS: "class_definition class",
                ScopeKind.NAMESPACE: "module",
                ScopeKind.FUNCTION: "function_definition",
                ScopeKind.CLOSURE: "lambda",
                ScopeKind.BLOCK: "if_statement for_statement while_statement try_statement"
                " with_statement match_statement",
            }
        ),
        keyword_scopes=scope_table(
            {
                ScopeKind.FUNCTION: "def",
                ScopeKind.CLASS: "class",
                ScopeKind.BLOCK: "if else for while match try finally",
            }
        ),
        comments=words("comment"),
        blocks=words("block"),
        strings=words("string string_content"),
        interpolations=words("interpolation"),
        names=words("identifier"),
        parameters=words("parameters"),
        fill_scopes=words("block class_definition function_definition"),
        wrappers=words("decorated_definition"),
        leading=words("comment"),
        functions=words("function_definition"),
        definition_bodies=words("block"),
    ),
    tags=True,
    imports=re.compile(
        r"^[ \t]*from[ \t]+[\w.]+[ \t]+import[ \t]+(?:\(([^)]*)\)|([^\n#;]*))", re.MULTILINE
    ),
    lexical=re.compile(
        rf"#[^\n]*|[rRbBuUfF]{{0,2}}(?:\"\"\"[\s\S]*?(?:\"\"\"|\Z)|'''[\s\S]*?(?:'''|\Z)|{DQ}|{SQ})"
    ),
    local_definitions=re.compile(r"^[ \t]*([^\W\d]\w*)[ \t]*(?::[^=\n]*)?=(?!=)", re.MULTILINE),
)
"""Python (its shipped tags query finds functions, classes and module-level assignments)."""
