"""The one place errors become JSON-RPC responses: a short message out, details in the log."""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import Any

import attrs
from cattrs import BaseValidationError, transform_error
from lsprotocol.types import (
    CANCEL_REQUEST,
    EXIT,
    INITIALIZE,
    INITIALIZED,
    SHUTDOWN,
    TEXT_DOCUMENT_DID_CHANGE,
    TEXT_DOCUMENT_DID_CLOSE,
    TEXT_DOCUMENT_DID_OPEN,
    DidChangeTextDocumentParams,
    DidCloseTextDocumentParams,
    DidOpenTextDocumentParams,
    ExitNotification,
    ResponseError,
    ResponseErrorMessage,
)
from pygls.exceptions import JsonRpcException
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    lsp_method,
)
from pygls.protocol import _dict_to_object as dict_to_object

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002
INTERNAL_MESSAGE = "moe-lsp hit an internal error; details are in the server log."

MsgId = int | str


def client_safe(error: ResponseError) -> ResponseError:
    """The error without tracebacks or local paths: data dropped, internal messages replaced."""
    if error.code == INTERNAL_ERROR:
        return ResponseError(code=error.code, message=INTERNAL_MESSAGE)
    message = (error.message or "").strip().splitlines()
    return ResponseError(code=error.code, message=(message[0] if message else "")[:300])


class Refused(Exception):
    """A message the server will not run: what the client is told (if anything) and why."""

    def __init__(
        self, code: int, message: str, msg_id: MsgId | None = None, *, answer: bool = True
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.msg_id = msg_id
        self.answer = answer


def readable_id(value: Any) -> bool:
    """True for an id a response can echo: an integer (not a boolean) or a string."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def decode_json(body: bytes) -> Any:
    """Strict JSON from UTF-8 bytes (no NaN or Infinity); a `Refused` parse error otherwise."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        reason = "not UTF-8" if isinstance(err, UnicodeDecodeError) else _short_reason(err)
        raise Refused(PARSE_ERROR, f"Parse error: {reason}") from None


_WIRE_NAME = re.compile(r"(?<=[a-z0-9])_([a-z])")
"""snake_case attribute -> camelCase wire name, for the paths shown to the client."""
_OWN_REASONS = ("is not JSON", "must be an object or an array")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _short_reason(err: BaseException) -> str:
    """What was wrong, never the text itself: cattrs paths, JSON positions, or the error type."""
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg} at character {err.pos}"
    if isinstance(err, RecursionError):
        return "nested too deeply"
    if isinstance(err, BaseValidationError):
        problems = transform_error(err)
        if not problems:
            return "does not match the method's params"
        what, at, path = problems[0].rpartition(" @ ")
        return f"{what}{at}{_WIRE_NAME.sub(lambda m: m.group(1).upper(), path)}" if at else path
    if isinstance(err, ValueError | TypeError) and str(err).endswith(_OWN_REASONS):
        return str(err)
    return type(err).__name__


def _show(value: Any) -> str:
    """A method name or id for the log, cut short (it comes from the client)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


Authenticator = Callable[[str | None], str | None]
"""The token a client sent (None: none) -> the user it belongs to, or None to refuse."""
MAX_REFUSALS_BEFORE_LOGIN = 3
"""Messages refused before a connection authenticated; one more closes it."""


def given_token(data: dict[str, Any]) -> str | None:
    """The token an initialize message carries as initializationOptions.token."""
    params = data.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.get("token") if isinstance(options, dict) else None
    return given if isinstance(given, str) else None


def single_token(required: str) -> Authenticator:
    """An authenticator for one shared token (constant-time compare); its user is 'default'."""

    def check(given: str | None) -> str | None:
        ok = given is not None and hmac.compare_digest(given.encode(), required.encode())
        return "default" if ok else None

    return check


class MoeProtocol(LanguageServerProtocol):
    """pygls' protocol behind a gate that checks every message and answers every request once.

    Entry points from the transport: `handle_body` (one framed message) and `handle_frame_error`
    (bytes that could not be framed). Every refusal goes through `_refuse`, every error response
    through `client_safe`.
    """

    # Class-level defaults: pygls reads every attribute (properties included) while the base
    # class is still being set up, before __init__ below has run.
    _initialized = False
    authenticate: Authenticator | None = None
    user: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._initialize_id: MsgId | None = None
        self._initialized = False
        self._initialized_notified = False
        self._shutdown_requested = False
        self.authenticate: Authenticator | None = None
        """When set (TCP), `initialize` must carry a token it accepts as
        initializationOptions.token; until then nothing else is processed, `exit` included."""
        self.user: str | None = None
        """Who authenticated (the token's user name; never the token)."""
        self.close_connection: Callable[[], None] | None = None
        """Set by a shared server's connection: called to drop a connection that sends input
        that is not LSP, or too many messages before it authenticated."""
        self._refusals = 0

    @property
    def has_initialized(self) -> bool:
        """`initialize` was answered successfully."""
        return self._initialized

    @property
    def logged_in(self) -> bool:
        """The connection may send more than `initialize` (no token needed, or a good one)."""
        return self.authenticate is None or self.user is not None

    # -- entry points -------------------------------------------------------------------------
    def handle_body(self, body: bytes) -> None:
        """Check one message body and dispatch it; refusals are answered or logged, never raised."""
        try:
            data = decode_json(body)
            message = self._admit(data) if self.logged_in else self._login(data)
        except Refused as refusal:
            self._refuse(refusal)
            if self.close_connection is not None and not self._initialized:
                self._refusals += 1
                if self._refusals > MAX_REFUSALS_BEFORE_LOGIN:
                    log.warning("closing a connection: too many messages refused before login")
                    self.close_connection()
            return
        if message is None:
            return
        try:
            self.handle_message(message)
        except Exception as err:  # pygls answers requests itself; this catches the rest
            what = _show(getattr(message, "method", "a response"))
            log.error("failed to handle %s (%s)", what, type(err).__name__, exc_info=True)

    def handle_frame_error(self, reason: str) -> None:
        """Bytes that were not a well-framed message: one parse error, id null. On a shared
        server's connection that has not initialized, it is not an LSP client (a browser's HTTP
        request, a port scan): the connection is closed at once."""
        if self.close_connection is not None and not self._initialized:
            log.warning("closing a connection that does not speak LSP (%s)", reason)
            self.close_connection()
            return
        self._refuse(Refused(PARSE_ERROR, f"Parse error: {reason}"))

    # -- the one place refusals become responses ------------------------------------------------
    def _refuse(self, refusal: Refused) -> None:
        who = "notification" if not refusal.answer else f"id {_show(refusal.msg_id)}"
        log.warning("refused message (%s): %d %s", who, refusal.code, refusal.message)
        if refusal.answer:
            self._send_response(
                refusal.msg_id, error=ResponseError(code=refusal.code, message=refusal.message)
            )

    def _send_response(
        self, msg_id: Any, result: Any | None = None, error: ResponseError | None = None
    ) -> None:
        if error is not None:
            if error.code == INTERNAL_ERROR:
                log.error("request %s failed: %s", _show(msg_id), error.message)
            error = client_safe(error)
            if msg_id is None:  # lsprotocol would drop a null id; JSON-RPC wants it written
                self._send_data(
                    {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": {"code": error.code, "message": error.message},
                    }
                )
                return
        super()._send_response(msg_id, result=result, error=error)

    def _execute_handler(
        self,
        msg_id: MsgId,
        handler: Callable[..., Any],
        callback: Callable[[Future[Any]], None],
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        # pygls files the future of every handler it runs under its message id, and only a
        # response removes it: notifications handled by pygls' own generator handlers (didOpen,
        # didChange, didClose, ...) stayed there forever, one per keystroke.
        def done(future: Future[Any]) -> None:
            if self._request_futures.get(msg_id) is future:
                del self._request_futures[msg_id]
            callback(future)

        super()._execute_handler(msg_id, handler, done, args, kwargs)

    def _send_handler_result(self, future: Future[Any], *, msg_id: MsgId) -> None:
        failure = None if future.cancelled() else future.exception()
        if msg_id == self._initialize_id and not self._initialized:
            self._initialized = not future.cancelled() and failure is None
            if not self._initialized:
                self._initialize_id = None  # a failed initialize may be tried again
        if isinstance(failure, JsonRpcException) and failure.code != INTERNAL_ERROR:
            # The client's fault (such as an unknown command): one log line, not a traceback.
            self._request_futures.pop(msg_id, None)
            self._refuse(Refused(failure.code, failure.message, msg_id))
            return
        super()._send_handler_result(future, msg_id=msg_id)

    # -- pygls built-ins replaced --------------------------------------------------------------
    @lsp_method(SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls' shutdown, safe to run at any moment: it cancels every other request in flight,
        and cancelling one runs `_execute_handler`'s callback, which removes it from
        `_request_futures`; pygls iterated that dict while it changed and crashed (-32603)."""
        if (user_handler := self.fm.features.get(SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True

    # pygls' own document handlers also keep every document's text in `workspace` (a second copy
    # beside the session's store, with no bound, refused documents included, and a pure-Python
    # UTF-16 conversion per change). The session's store is the only copy: these only pass the
    # notification on. Nothing reads text documents from `workspace`.
    @lsp_method(TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(
        self, params: DidOpenTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (user_handler := self.fm.features.get(TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield user_handler, (params,), None

    @lsp_method(TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (user_handler := self.fm.features.get(TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield user_handler, (params,), None

    @lsp_method(TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(
        self, params: DidCloseTextDocumentParams
    ) -> Generator[Any, Any, None]:
        if (user_handler := self.fm.features.get(TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield user_handler, (params,), None

    # -- the gate -----------------------------------------------------------------------------
    def _login(self, data: Any) -> Any | None:
        """Before authentication only `initialize` with a token the server accepts is taken."""
        assert self.authenticate is not None
        msg_id = data.get("id") if isinstance(data, dict) else None
        reply_to = msg_id if readable_id(msg_id) else None
        if not isinstance(data, dict) or data.get("method") != INITIALIZE or reply_to is None:
            raise Refused(SERVER_NOT_INITIALIZED, "Not authenticated", reply_to)
        user = self.authenticate(given_token(data))
        if user is None:
            raise Refused(INVALID_REQUEST, "Invalid request: missing or wrong token", reply_to)
        message = self._admit(data)
        self.user = user
        log.info("connection authenticated as %s", user)
        return message

    def _admit(self, data: Any) -> Any | None:
        """The structured message to dispatch, None to drop it, or `Refused`."""
        if not isinstance(data, dict):
            why = "batches are not supported" if isinstance(data, list) else "not a JSON object"
            raise Refused(INVALID_REQUEST, f"Invalid request: {why}")
        msg_id = data.get("id")
        reply_to = msg_id if readable_id(msg_id) else None
        if "method" not in data:
            if "id" in data and ("result" in data or "error" in data):
                return self._admit_response(data)
            raise Refused(INVALID_REQUEST, "Invalid request: no method", reply_to)
        method = data["method"]
        if data.get("jsonrpc") != "2.0":
            raise Refused(INVALID_REQUEST, 'Invalid request: jsonrpc must be "2.0"', reply_to)
        if not isinstance(method, str):
            raise Refused(INVALID_REQUEST, "Invalid request: method must be a string", reply_to)
        if "id" in data and reply_to is None:
            raise Refused(INVALID_REQUEST, "Invalid request: id must be an integer or a string")
        if reply_to is not None:
            return self._admit_request(reply_to, method, data)
        return self._admit_notification(method, data)

    def _admit_request(self, msg_id: MsgId, method: str, data: dict[str, Any]) -> Any:
        if self._shutdown_requested:
            raise Refused(INVALID_REQUEST, "Invalid request: the server is shutting down", msg_id)
        if method == INITIALIZE:
            if self._initialize_id is not None:
                raise Refused(INVALID_REQUEST, "Invalid request: already initialized", msg_id)
        elif not self._initialized:
            raise Refused(SERVER_NOT_INITIALIZED, "Server not initialized", msg_id)
        if not self._has_handler(method):
            raise Refused(METHOD_NOT_FOUND, f"Method not found: {_show(method)}", msg_id)
        if self._is_notification_method(method):
            raise Refused(INVALID_REQUEST, f"Invalid request: {method} is a notification", msg_id)
        message = self._structure(data, method, msg_id)
        if method == INITIALIZE:
            self._initialize_id = msg_id
        elif method == SHUTDOWN:
            self._shutdown_requested = True
        return message

    def _admit_notification(self, method: str, data: dict[str, Any]) -> Any | None:
        if method == EXIT:
            if self.close_connection is not None:
                self.close_connection()  # a shared server: this connection ends, not the process
                return None
            return ExitNotification()
        if method.startswith("$/") and not self._has_handler(method):
            log.debug("ignored notification %s", _show(method))
            return None
        if self._shutdown_requested or not self._initialized:
            when = "after shutdown" if self._shutdown_requested else "before initialize"
            raise Refused(INVALID_REQUEST, f"{_show(method)} {when}", answer=False)
        if not self._has_handler(method):
            raise Refused(METHOD_NOT_FOUND, f"no handler for {_show(method)}", answer=False)
        if self._is_request_method(method):
            raise Refused(INVALID_REQUEST, f"{method} is a request but has no id", answer=False)
        if method == INITIALIZED:
            if self._initialized_notified:
                raise Refused(INVALID_REQUEST, "a second initialized", answer=False)
            self._initialized_notified = True
        message = self._structure(data, method, None)
        if method == CANCEL_REQUEST and not readable_id(message.params.id):
            raise Refused(INVALID_PARAMS, "$/cancelRequest for an unreadable id", answer=False)
        return message

    def _admit_response(self, data: dict[str, Any]) -> Any | None:
        """A client's answer to one of our requests; never answered back, whatever it holds."""
        msg_id = data["id"]
        # Only ids of requests this server sent (pygls keeps incoming requests' futures in the
        # same table, and a forged response must not complete one of those).
        if not readable_id(msg_id) or msg_id not in self._result_types:
            log.warning("dropped a response to an unknown request %s", _show(msg_id))
            return None
        result_type = self._result_types.pop(msg_id, None)
        try:
            if "error" in data:
                return self._converter.structure(data, ResponseErrorMessage)
            if result_type is None:
                return JsonRPCResponseMessage(
                    id=msg_id, jsonrpc="2.0", result=dict_to_object(data.get("result"))
                )
            return self._converter.structure(data, result_type)
        except Exception as err:
            log.warning("malformed response to request %s: %s", _show(msg_id), _short_reason(err))
            error = ResponseError(code=INVALID_REQUEST, message="malformed response")
            self._handle_response(msg_id, None, error)
            return None

    def _structure(self, data: dict[str, Any], method: str, msg_id: MsgId | None) -> Any:
        """The typed message; params that do not fit give -32602 (requests) or a log line."""
        message_type = self.get_message_type(method)
        params = data.get("params")
        try:
            if params is not None and not isinstance(params, dict | list):
                raise TypeError("params must be an object or an array")
            if message_type is not None:
                return self._converter.structure(data, message_type)
            params = dict_to_object(params)
            if msg_id is None:
                return JsonRPCNotification(method=method, jsonrpc="2.0", params=params)
            return JsonRPCRequestMessage(id=msg_id, method=method, jsonrpc="2.0", params=params)
        except Exception as err:
            reason = f"Invalid params for {method}: {_short_reason(err)}"  # a known method
            raise Refused(INVALID_PARAMS, reason, msg_id, answer=msg_id is not None) from None

    def _has_handler(self, method: str) -> bool:
        fm = self.fm
        return method in fm.builtin_features or method in fm.features or method == CANCEL_REQUEST

    def _is_request_method(self, method: str) -> bool:
        message_type = self.get_message_type(method)
        return message_type is not None and hasattr(attrs.fields(message_type), "id")

    def _is_notification_method(self, method: str) -> bool:
        message_type = self.get_message_type(method)
        return message_type is not None and not hasattr(attrs.fields(message_type), "id")
