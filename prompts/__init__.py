"""Prompts: pure text-in, prompt-out and completion clean-up (no I/O, no engine, no LSP)."""
