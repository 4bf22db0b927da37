"""One spec per language: grammar, lexical facts, node types, queries (registry in languages.py)."""
