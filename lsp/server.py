"""The pygls server: one process-wide `Service` and, over stdio, one client `Session`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from moe_lsp.inference.engine import EngineState
from moe_lsp.inference.gpu import engine_gpu

from . import __version__
from .engine_host import EngineFactory, EngineHost, default_factory
from .protocol import MoeProtocol
from .service import Service
from .session import Session
from .settings import ServerSettings

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "moe/status"
"""Server -> client: {state, message} whenever the engine's state changes, and
{gpu: [{device, freeGib, totalGib}]} when the engine runs on CUDA GPUs."""


class MoeLanguageServer(LanguageServer):
    """pygls server for one client: its `Session`, and the `Service` it shares the engine with."""

    def __init__(
        self,
        settings: ServerSettings | None = None,
        factory: EngineFactory = default_factory,
        service: Service | None = None,
        *,
        shared: bool = False,
    ) -> None:
        super().__init__("moe-lsp", __version__, protocol_cls=MoeProtocol)
        self.service = service or Service(factory)
        self.shared = shared
        """One of many sessions of a shared server: the engine is the server's, not ours."""
        self.session = Session(self.service, settings, notify=self._notify)
        if shared:
            self.session.budget_ceiling = self.session.settings.memory_budget_bytes
        self.stopping: asyncio.Task[None] | None = None
        """The engine stop begun by `shutdown`."""
        self.progress_supported = False
        self.pulls_settings = False
        """The client answers workspace/configuration (capability workspace.configuration)."""
        self.startup_warnings: list[str] = []
        """Problems found before the client came (the config file's), shown at `initialized`."""
        self._progress_token: str | None = None
        self._announced_failure = False
        self._unlisten = self.service.listen(self._on_engine_status)

    @property
    def host(self) -> EngineHost:
        """The process's engine host."""
        return self.service.host

    def _notify(self, method: str, params: Any) -> None:
        try:
            self.protocol.notify(method, params)
        except Exception:
            log.debug("notification %s failed", method, exc_info=True)

    def show(self, kind: lsp.MessageType, message: str) -> None:
        """One short message in the editor's message area, also written to the client's log
        (window/logMessage), where it stays after the message is dismissed."""
        text = f"moe-lsp: {message}"
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=text))
        with contextlib.suppress(Exception):
            self.window_log_message(lsp.LogMessageParams(type=kind, message=text))

    def warn(self, message: str) -> None:
        """A warning: shown, and in the client's log."""
        self.show(lsp.MessageType.Warning, message)

    async def pull_settings(self, section: str, timeout: float = 5.0) -> Any:
        """The client's settings under `section` (workspace/configuration), or None when it has
        none or does not answer in time."""
        try:
            params = lsp.ConfigurationParams(items=[lsp.ConfigurationItem(section=section)])
            answer = await asyncio.wait_for(self.workspace_configuration_async(params), timeout)
        except Exception as err:
            log.info("workspace/configuration not answered: %s", type(err).__name__)
            return None
        return answer[0] if isinstance(answer, list | tuple) and answer else None

    def _on_engine_status(self, state: EngineState, message: str) -> None:
        """Report engine state as progress, a status notification and, on failure, a message."""
        status: dict[str, Any] = {"state": str(state), "message": message}
        status.update(engine_gpu(self.service.host.engine))  # free/total VRAM, only on CUDA
        self._notify(STATUS_NOTIFICATION, status)
        token = self._progress_token
        if token is not None and token in self.work_done_progress.tokens:
            if state is EngineState.LOADING:
                self.work_done_progress.report(token, lsp.WorkDoneProgressReport(message=message))
            else:
                self.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=message))
                self._progress_token = None
        if state is EngineState.READY and self.service.profile_warning:
            self.show(lsp.MessageType.Warning, self.service.profile_warning)
        if state is EngineState.FAILED and not self._announced_failure:
            self._announced_failure = True
            self.show(lsp.MessageType.Error, message)

    @contextlib.asynccontextmanager
    async def progress(self, title: str) -> AsyncIterator[None]:
        """Work-done progress around a long request, when the client shows it."""
        token = None
        if self.progress_supported:
            token = f"moe-lsp-{uuid.uuid4().hex[:8]}"
            try:
                await asyncio.wait_for(self.work_done_progress.create_async(token), 5)
                self.work_done_progress.begin(
                    token, lsp.WorkDoneProgressBegin(title=title, cancellable=False)
                )
            except Exception:
                token = None
        try:
            yield
        finally:
            if token is not None:
                with contextlib.suppress(Exception):
                    self.work_done_progress.end(token, lsp.WorkDoneProgressEnd())

    async def start_engine(self) -> None:
        """Open a progress bar (if the client has them) and load the engine in the background."""
        if self.progress_supported:
            token = f"moe-lsp-load-{uuid.uuid4().hex[:8]}"
            try:
                await asyncio.wait_for(self.work_done_progress.create_async(token), 5)
                self.work_done_progress.begin(
                    token,
                    lsp.WorkDoneProgressBegin(title="moe-lsp", message="Loading model ..."),
                )
                self._progress_token = token
            except Exception:
                log.info("client did not accept a progress token; loading without a progress bar")
        settings = self.session.settings
        self.service.start(settings.engine, settings.completion.profile)
        if self.shared:  # the engine may have been loaded long ago: tell this client its state
            self._on_engine_status(self.service.host.state, self.service.host.message)

    def stop(self) -> None:
        """`shutdown`: end the session at once; a standalone server also stops the engine, in
        the background (a shared server's engine serves the other sessions)."""
        self.end()
        if not self.shared:
            self.stopping = asyncio.ensure_future(self.service.host.shutdown())

    def end(self) -> None:
        """The session ends: its requests and streaks are cancelled; no more status updates."""
        self.session.close()
        self._unlisten()


def create_server(
    settings: ServerSettings | None = None, factory: EngineFactory = default_factory
) -> MoeLanguageServer:
    """A server with every handler registered."""
    from .handlers import register

    server = MoeLanguageServer(settings, factory)
    register(server)
    return server
