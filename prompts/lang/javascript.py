"""JavaScript, TypeScript and TSX: grammars, lexical facts, node types and definition queries."""

from __future__ import annotations

import re
from dataclasses import replace

from .lexical import C_COMMENTS, DQ, SQ
from .spec import LanguageSpec, NodeTypes, ScopeKind, scope_table, words

_JS_KEYWORDS = (
    "break case catch class const continue debugger default delete do else export extends finally"
    " for function if import in instanceof let new return super switch this throw try typeof var"
    " void while with yield async await of static get set null undefined true false NaN Infinity"
    " console window document globalThis require module exports Object Array String Number"
    " Boolean Symbol BigInt Math JSON Date RegExp Error TypeError RangeError Promise Map Set"
    " WeakMap WeakSet parseInt parseFloat isNaN setTimeout clearTimeout setInterval fetch"
)
_TS_KEYWORDS = (
    " type interface enum implements namespace declare abstract readonly private protected public"
    " as is keyof infer never unknown any number string boolean object satisfies Record Partial"
    " Required Readonly Pick Omit Exclude Extract ReturnType Parameters Awaited"
)
_JS_DEFINITIONS = """
(function_declaration name: (identifier) @name) @def
(generator_function_declaration name: (identifier) @name) @def
(method_definition name: [(property_identifier) (private_property_identifier)] @name) @def
(lexical_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression)])) @def
(variable_declaration (variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression)])) @def
(program (lexical_declaration (variable_declarator name: (identifier) @name)) @def)
(program (export_statement
  (lexical_declaration (variable_declarator name: (identifier) @name)) @def))
"""
_TS_DEFINITIONS = """
(class_declaration name: (type_identifier) @name) @def
(abstract_class_declaration name: (type_identifier) @name) @def
(interface_declaration name: (type_identifier) @name) @def
(type_alias_declaration name: (type_identifier) @name) @def
(enum_declaration name: (identifier) @name) @def
"""
_BLOCKS = (
    "if_statement for_statement for_in_statement while_statement do_statement try_statement"
    " with_statement switch_statement"
)
_CLOSURES = "function_expression function generator_function arrow_function"
_KEYWORD_BLOCKS = "if else for while switch try catch finally do"
_FUNCTIONS = (
    "arrow_function function_declaration function_expression generator_function_declaration"
    " method_definition"
)

JAVASCRIPT = LanguageSpec(
    name="javascript",
    module="tree_sitter_javascript",
    function="language",
    extensions=(".js", ".mjs", ".cjs", ".jsx"),
    aliases=("javascriptreact",),
    quotes=('"', "'", "`"),
    keywords=words(_JS_KEYWORDS),
    family="javascript",
    nodes=NodeTypes(
        scopes=scope_table(
            {
                ScopeKind.CLASS: "class_declaration class",
                ScopeKind.FUNCTION: "function_declaration generator_function_declaration",
                ScopeKind.METHOD: "method_definition",
                ScopeKind.CLOSURE: _CLOSURES,
                ScopeKind.BLOCK: _BLOCKS,
            }
        ),
        keyword_scopes=scope_table(
            {
                ScopeKind.FUNCTION: "function",
                ScopeKind.CLASS: "class",
                ScopeKind.BLOCK: _KEYWORD_BLOCKS,
            }
        ),
        comments=words("comment html_comment"),
        cases=words("switch_case switch_default"),
        blocks=words("class_body statement_block switch_body"),
        strings=words("string string_fragment template_string"),
        interpolations=words("template_substitution"),
        names=words("identifier property_identifier"),
        parameters=words("formal_parameters"),
        fill_scopes=words("class_body function_declaration object statement_block"),
        wrappers=words("export_statement"),
        leading=words("comment"),
        functions=words(_FUNCTIONS),
        definition_bodies=words("class_body statement_block"),
    ),
    definitions=_JS_DEFINITIONS + "(class_declaration name: (identifier) @name) @def\n",
    imports=re.compile(
        r"\bimport[ \t]+(?:type[ \t]+)?(?:([\w$]+)[ \t]*,?[ \t]*)?(?:\{([^}]*)\})?[ \t\n]*from\b"
    ),
    lexical=re.compile(rf"{C_COMMENTS}|{DQ}|{SQ}|`(?:[^`\\]|\\.)*`"),
)
"""JavaScript (and JSX, which its grammar parses)."""

TYPESCRIPT = replace(
    JAVASCRIPT,
    name="typescript",
    module="tree_sitter_typescript",
    function="language_typescript",
    extensions=(".ts", ".mts", ".cts"),
    aliases=(),
    keywords=words(_JS_KEYWORDS + _TS_KEYWORDS),
    nodes=replace(
        JAVASCRIPT.nodes,
        scopes=scope_table(
            {
                ScopeKind.CLASS: "class_declaration abstract_class_declaration class",
                ScopeKind.ENUM: "enum_declaration",
                ScopeKind.INTERFACE: "interface_declaration",
                ScopeKind.NAMESPACE: "internal_module module",
                ScopeKind.FUNCTION: "function_declaration generator_function_declaration",
                ScopeKind.METHOD: "method_definition",
                ScopeKind.CLOSURE: _CLOSURES,
                ScopeKind.BLOCK: _BLOCKS,
            }
        ),
        keyword_scopes=scope_table(
            {
                ScopeKind.FUNCTION: "function",
                ScopeKind.CLASS: "class",
                ScopeKind.ENUM: "enum",
                ScopeKind.INTERFACE: "interface",
                ScopeKind.NAMESPACE: "namespace",
                ScopeKind.BLOCK: _KEYWORD_BLOCKS,
            }
        ),
        blocks=words("class_body enum_body interface_body statement_block switch_body"),
        names=words("identifier property_identifier type_identifier"),
        definition_bodies=words("class_body enum_body interface_body object_type statement_block"),
    ),
    definitions=_JS_DEFINITIONS + _TS_DEFINITIONS,
)
"""TypeScript: JavaScript's facts plus types, interfaces, enums and namespaces."""

TYPESCRIPT_REACT = replace(
    TYPESCRIPT, name="typescriptreact", function="language_tsx", extensions=(".tsx",)
)
"""TSX: TypeScript's facts on the TSX grammar."""
