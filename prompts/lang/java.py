"""Java: grammar, lexical facts, node types and definition queries."""

from __future__ import annotations

import re

from .spec import LanguageSpec, NodeTypes, ScopeKind, scope_table, words

JAVA = LanguageSpec(
    name="java",
    module="tree_sitter_java",
    function="language",
    extensions=(".java",),
    keywords=words(
        "abstract assert boolean break byte case catch char class const continue default do double"
        " else enum extends final finally float for goto if implements import instanceof int"
        " interface long native new package private protected public return short static strictfp"
        " super switch synchronized this throw throws transient try void volatile while var"
        " yield null true false String Object Integer Long Double Boolean Character"
        " System Math List Map Set ArrayList HashMap Override Exception RuntimeException"
    ),
    family="java",
    nodes=NodeTypes(
        scopes=scope_table(
            {
                ScopeKind.CLASS: "class_declaration class record_declaration",
                ScopeKind.ENUM: "enum_declaration",
                ScopeKind.INTERFACE: "interface_declaration annotation_type_declaration",
                ScopeKind.NAMESPACE: "module",
                ScopeKind.METHOD: "method_declaration constructor_declaration"
                " compact_constructor_declaration",
                ScopeKind.CLOSURE: "lambda_expression",
                ScopeKind.BLOCK: "if_statement for_statement enhanced_for_statement while_statement"
                " do_statement try_statement try_with_resources_statement switch_expression"
                " synchronized_statement",
            }
        ),
        keyword_scopes=scope_table(
            {
                ScopeKind.CLASS: "class",
                ScopeKind.ENUM: "enum",
                ScopeKind.INTERFACE: "interface",
                ScopeKind.BLOCK: "if else for while switch try catch finally do",
            }
        ),
        comments=words("block_comment line_comment"),
        cases=words("switch_block_statement_group"),
        blocks=words(
            "annotation_type_body block class_body constructor_body enum_body interface_body"
            " module_body switch_block"
        ),
        strings=words("character_literal multiline_string_fragment string_fragment string_literal"),
        interpolations=words("string_interpolation"),
        names=words("identifier type_identifier"),
        parameters=words("formal_parameters"),
        fill_scopes=words("block class_body constructor_body method_declaration"),
        leading=words("block_comment line_comment"),
        functions=words("constructor_declaration method_declaration"),
        definition_bodies=words("block class_body enum_body interface_body"),
        name_wrappers=words("scoped_identifier"),
    ),
    tags=True,
    definitions="""
(enum_declaration name: (identifier) @name) @def
(record_declaration name: (identifier) @name) @def
""",
    imports=re.compile(r"^[ \t]*import[ \t]+(?:static[ \t]+)?[\w.]*?(\w+)[ \t]*;", re.MULTILINE),
)
"""Java (its shipped tags query finds classes, interfaces and methods; enums and records here)."""
