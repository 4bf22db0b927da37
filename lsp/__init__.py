"""Language server: LSP handlers, document store, lifecycle, cancellation and the CLI."""
