"""Inference: the default model, the engine protocol and its vLLM implementation."""
