"""The one place errors become JSON-RPC responses: a short message out, details in the log."""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol.types import ResponseError
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger(__name__)

INTERNAL_ERROR = -32603
INTERNAL_MESSAGE = "moe-lsp hit an internal error; details are in the server log."


def client_safe(error: ResponseError) -> ResponseError:
    """The error without tracebacks or local paths: data dropped, internal messages replaced."""
    if error.code == INTERNAL_ERROR:
        return ResponseError(code=error.code, message=INTERNAL_MESSAGE)
    message = (error.message or "").strip().splitlines()
    return ResponseError(code=error.code, message=(message[0] if message else "")[:300])


class MoeProtocol(LanguageServerProtocol):
    """pygls' protocol, with every error response passed through `client_safe`."""

    def _send_response(
        self, msg_id: Any, result: Any | None = None, error: ResponseError | None = None
    ) -> None:
        if error is not None:
            if error.code == INTERNAL_ERROR:
                log.error("request %s failed: %s", msg_id, error.message)
            error = client_safe(error)
        super()._send_response(msg_id, result=result, error=error)
