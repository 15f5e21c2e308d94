"""The AutoConfig stream: SSE parsing, the connection loop, ordering, the manager, a local server.

* :mod:`.sse` — incremental WHATWG event-stream parser;
* :mod:`.client` — the connection loop with the Relay Proxy's retry policy;
* :mod:`.events` — typed ``put``/``patch``/``delete``/``reconnect`` messages;
* :mod:`.receiver` — versions and tombstones (insert / update / delete / no-op);
* :mod:`.handler` — the interface the embedding application implements;
* :mod:`.manager` — :class:`StreamManager`: cache first, stream authoritative, store in step;
* :mod:`.server` — a local AutoConfig stream server for tests, demos and development.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports
from .client import (
    AuthenticationError,
    BackoffPolicy,
    RestartStream,
    StreamClient,
    StreamHTTPError,
    StreamState,
)
from .events import (
    DeleteMessage,
    MalformedEventError,
    PatchMessage,
    PutMessage,
    ReconnectMessage,
    RejectedMessage,
    StreamMessage,
    parse_event,
)
from .handler import AutoConfigHandler, BaseHandler, SnapshotSource
from .manager import StreamManager, StreamManagerStatus
from .receiver import Action, MessageReceiver
from .sse import ServerSentEvent, SSEParseError, SSEParser

if TYPE_CHECKING:
    from .server import StreamServer

__all__ = [
    "Action",
    "AuthenticationError",
    "AutoConfigHandler",
    "BackoffPolicy",
    "BaseHandler",
    "DeleteMessage",
    "MalformedEventError",
    "MessageReceiver",
    "PatchMessage",
    "PutMessage",
    "ReconnectMessage",
    "RejectedMessage",
    "RestartStream",
    "SSEParseError",
    "SSEParser",
    "ServerSentEvent",
    "SnapshotSource",
    "StreamClient",
    "StreamHTTPError",
    "StreamManager",
    "StreamManagerStatus",
    "StreamMessage",
    "StreamServer",
    "StreamState",
    "parse_event",
]


# StreamServer is imported on first use: the service never runs the local server, so
# `autoconfig-cache run` does not pay for importing it.
__getattr__, __dir__ = lazy_exports(__name__, {"StreamServer": "server"})
