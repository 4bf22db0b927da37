"""Language server: LSP handlers, document store, lifecycle, cancellation and the CLI."""

__version__ = "0.1.0"
