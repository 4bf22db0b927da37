"""C and C++: grammars, lexical facts, node types and definition queries."""

from __future__ import annotations

from dataclasses import replace

from .spec import LanguageSpec, NodeTypes, ScopeKind, scope_table, words

_C_KEYWORDS = (
    "auto break case char const continue default do double else enum extern float for goto if"
    " inline int long register restrict return short signed sizeof static struct switch typedef"
    " union unsigned void volatile while bool true false NULL size_t ssize_t uint8_t uint16_t"
    " uint32_t uint64_t int8_t int16_t int32_t int64_t printf fprintf sprintf snprintf malloc"
    " calloc realloc free memcpy memset memmove strlen strcmp strncmp strcpy assert exit defined"
    " include define ifdef ifndef endif elif pragma"
)
_CPP_KEYWORDS = (
    " alignas alignof and asm catch class constexpr consteval constinit co_await"
    " co_return co_yield decltype delete explicit export friend mutable namespace new"
    " noexcept not nullptr operator or override private protected public static_cast"
    " dynamic_cast reinterpret_cast const_cast template this throw try typeid typename"
    " using virtual std string vector map unique_ptr shared_ptr make_unique make_shared"
    " cout cerr endl move"
)
_C_DEFINITIONS = """
(function_definition declarator: [
  (function_declarator declarator: (_) @name)
  (pointer_declarator declarator: (function_declarator declarator: (_) @name))
  (pointer_declarator declarator: (pointer_declarator
    declarator: (function_declarator declarator: (_) @name)))
]) @def
(declaration declarator: [
  (function_declarator declarator: (identifier) @name)
  (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
]) @def
(struct_specifier name: (type_identifier) @name body: (_)) @def
(union_specifier name: (type_identifier) @name body: (_)) @def
(enum_specifier name: (type_identifier) @name body: (_)) @def
(type_definition declarator: (type_identifier) @name) @def
(preproc_def name: (identifier) @name) @def
(preproc_function_def name: (identifier) @name) @def
"""
_CPP_DEFINITIONS = """
(function_definition declarator: (reference_declarator
  (function_declarator declarator: (_) @name))) @def
(class_specifier name: (type_identifier) @name body: (_)) @def
(alias_declaration name: (type_identifier) @name) @def
"""
_BODIES = "compound_statement declaration_list enumerator_list field_declaration_list"

C = LanguageSpec(
    name="c",
    module="tree_sitter_c",
    function="language",
    extensions=(".c", ".h"),
    keywords=words(_C_KEYWORDS),
    family="c",
    nodes=NodeTypes(
        scopes=scope_table(
            {
                ScopeKind.STRUCT: "struct_specifier union_specifier",
                ScopeKind.ENUM: "enum_specifier",
                ScopeKind.FUNCTION: "function_definition",
                ScopeKind.BLOCK: "if_statement for_statement while_statement do_statement"
                " switch_statement",
            }
        ),
        keyword_scopes=scope_table(
            {
                ScopeKind.STRUCT: "struct union",
                ScopeKind.ENUM: "enum",
                ScopeKind.BLOCK: "if else for while switch do",
            }
        ),
        comments=words("comment"),
        cases=words("case_statement"),
        blocks=words(_BODIES),
        strings=words("char_literal string_content string_literal system_lib_string"),
        names=words("field_identifier identifier type_identifier"),
        parameters=words("parameter_list"),
        fill_scopes=words(
            "compound_statement declaration_list field_declaration_list function_definition"
        ),
        leading=words("comment"),
        functions=words("function_definition"),
        definition_bodies=words(_BODIES),
    ),
    definitions=_C_DEFINITIONS,
)
"""C (its shipped tags query captures a function's declarator, not the whole function)."""

CPP = replace(
    C,
    name="cpp",
    module="tree_sitter_cpp",
    extensions=(".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx"),
    aliases=("c++",),
    keywords=words(_C_KEYWORDS + _CPP_KEYWORDS),
    nodes=replace(
        C.nodes,
        scopes=scope_table(
            {
                ScopeKind.CLASS: "class class_specifier",
                ScopeKind.STRUCT: "struct_specifier union_specifier",
                ScopeKind.ENUM: "enum_specifier",
                ScopeKind.NAMESPACE: "namespace_definition",
                ScopeKind.FUNCTION: "function_definition",
                ScopeKind.CLOSURE: "lambda_expression",
                ScopeKind.BLOCK: "if_statement for_statement for_range_loop while_statement"
                " do_statement try_statement switch_statement",
            }
        ),
        keyword_scopes=scope_table(
            {
                ScopeKind.CLASS: "class",
                ScopeKind.STRUCT: "struct union",
                ScopeKind.ENUM: "enum",
                ScopeKind.NAMESPACE: "namespace",
                ScopeKind.BLOCK: "if else for while switch try catch do",
            }
        ),
        strings=words(
            "char_literal raw_string_literal string_content string_literal system_lib_string"
        ),
        wrappers=words("template_declaration"),
        name_wrappers=words("qualified_identifier template_function"),
    ),
    definitions=_C_DEFINITIONS + _CPP_DEFINITIONS,
)
"""C++: C's facts plus classes, namespaces, lambdas, templates and references."""
