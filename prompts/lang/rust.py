"""Rust: grammar, lexical facts, node types and definition queries."""

from __future__ import annotations

import re

from .spec import LanguageSpec, NodeTypes, ScopeKind, scope_table, words

RUST = LanguageSpec(
    name="rust",
    module="tree_sitter_rust",
    function="language",
    extensions=(".rs",),
    quotes=('"',),
    keywords=words(
        "as async await break const continue crate dyn else enum extern false fn for if impl in"
        " let loop match mod move mut pub ref return self Self static struct super trait true type"
        " unsafe use where while Some None Ok Err Option Result Vec String Box Rc Arc println"
        " print eprintln format vec panic assert assert_eq assert_ne write writeln todo"
        " unimplemented i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64 bool char str"
        " Default Clone Copy Debug"
    ),
    family="rust",
    nodes=NodeTypes(
        scopes=scope_table(
            {
                ScopeKind.STRUCT: "struct_item union_item",
                ScopeKind.ENUM: "enum_item",
                ScopeKind.IMPL: "impl_item",
                ScopeKind.INTERFACE: "trait_item",
                ScopeKind.NAMESPACE: "mod_item",
                ScopeKind.FUNCTION: "function_item",
                ScopeKind.CLOSURE: "closure_expression",
                ScopeKind.BLOCK: "if_expression for_expression while_expression loop_expression"
                " match_expression unsafe_block async_block",
            }
        ),
        keyword_scopes=scope_table(
            {
                ScopeKind.FUNCTION: "fn",
                ScopeKind.STRUCT: "struct union",
                ScopeKind.ENUM: "enum",
                ScopeKind.IMPL: "impl",
                ScopeKind.INTERFACE: "trait",
                ScopeKind.NAMESPACE: "mod",
                ScopeKind.BLOCK: "if else for while loop match try unsafe",
            }
        ),
        comments=words(
            "block_comment doc_comment inner_doc_comment_marker line_comment"
            " outer_doc_comment_marker"
        ),
        blocks=words("block declaration_list enum_variant_list field_declaration_list match_block"),
        strings=words("char_literal raw_string_literal string_content string_literal"),
        names=words("field_identifier identifier type_identifier"),
        parameters=words("parameters"),
        fill_scopes=words("block declaration_list field_declaration_list function_item impl_item"),
        leading=words("attribute_item block_comment line_comment"),
        functions=words("function_item"),
        definition_bodies=words("block declaration_list enum_variant_list field_declaration_list"),
        name_wrappers=words("scoped_identifier"),
    ),
    definitions="""
(function_item name: (identifier) @name) @def
(struct_item name: (type_identifier) @name) @def
(enum_item name: (type_identifier) @name) @def
(union_item name: (type_identifier) @name) @def
(trait_item name: (type_identifier) @name) @def
(type_item name: (type_identifier) @name) @def
(const_item name: (identifier) @name) @def
(static_item name: (identifier) @name) @def
(macro_definition name: (identifier) @name) @def
(impl_item !trait type: [(type_identifier) @name (generic_type type: (type_identifier) @name)]) @def
""",
    imports=re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?use[ \t]+([^;]+);", re.MULTILINE),
    import_path=re.compile(r"[\w:]*::"),
)
"""Rust (its shipped tags query also takes modules, and lacks consts, statics and impls)."""
