"""Errors the inference layer raises, each with one sentence a user can act on."""


class InferenceError(Exception):
    """Base class: `str(err)` is a short message fit to show a user."""


class EngineConfigError(InferenceError):
    """The engine configuration cannot work (missing model, bad dtype, too little memory)."""


class EngineStartError(InferenceError):
    """The engine failed while starting."""


class EngineNotReady(InferenceError):
    """A request came before the engine was ready, or after it failed."""
