"""Go: grammar, lexical facts, node types and definition queries."""

from __future__ import annotations

from .spec import LanguageSpec, NodeTypes, ScopeKind, scope_table, words

GO = LanguageSpec(
    name="go",
    module="tree_sitter_go",
    function="language",
    extensions=(".go",),
    quotes=('"', "`", "'"),
    keywords=words(
        "break case chan const continue default defer else fallthrough for func go goto if import"
        " interface map package range return select struct switch type var append cap clear close"
        " complex copy delete imag len make max min new panic print println real recover any bool"
        " byte comparable complex64 complex128 error float32 float64 int int8 int16 int32 int64"
        " rune string uint uint8 uint16 uint32 uint64 uintptr true false iota nil"
    ),
    family="go",
    nodes=NodeTypes(
        scopes=scope_table(
            {
                ScopeKind.FUNCTION: "function_declaration",
                ScopeKind.METHOD: "method_declaration",
                ScopeKind.CLOSURE: "func_literal",
                ScopeKind.BLOCK: "if_statement for_statement expression_switch_statement"
                " type_switch_statement select_statement",
            }
        ),
        keyword_scopes=scope_table(
            {
                ScopeKind.FUNCTION: "func",
                ScopeKind.STRUCT: "struct",
                ScopeKind.INTERFACE: "interface",
                ScopeKind.BLOCK: "if else for switch select",
            }
        ),
        comments=words("comment"),
        cases=words("communication_case default_case expression_case type_case"),
        headed=words(
            "expression_switch_statement interface_type select_statement type_switch_statement"
        ),
        blocks=words("block field_declaration_list"),
        strings=words(
            "interpreted_string_literal interpreted_string_literal_content raw_string_literal"
            " raw_string_literal_content rune_literal"
        ),
        names=words("field_identifier identifier type_identifier"),
        parameters=words("parameter_list"),
        fill_scopes=words("block field_declaration_list function_declaration method_declaration"),
        leading=words("comment"),
        functions=words("function_declaration method_declaration"),
        definition_bodies=words("block field_declaration_list"),
    ),
    definitions="""
(function_declaration name: (identifier) @name) @def
(method_declaration name: (field_identifier) @name) @def
(type_declaration (type_spec name: (type_identifier) @name)) @def
(type_declaration (type_alias name: (type_identifier) @name)) @def
(const_declaration (const_spec name: (identifier) @name)) @def
(source_file (var_declaration (var_spec name: (identifier) @name)) @def)
""",
)
"""Go (its shipped tags query captures `type_spec` without the `type` keyword, and no aliases)."""
