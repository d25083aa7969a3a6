"""uvicorn's HTTP/1.1 protocol (h11) with a header timeout.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but waits
without end for a connection that opens and sends nothing, or half a request
line: a few hundred such connections hold a server's sockets. This protocol
closes a connection whose next request's headers are not complete within
`header_timeout_s` of the connection opening or of the first byte after the
previous answer.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


def header_timeout_protocol(header_timeout_s: float) -> type[H11Protocol]:
    """An `H11Protocol` class closing connections slower than `header_timeout_s` to send headers."""

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            if self._header_timer is None and self._awaiting_headers():
                self._arm_header_timer()
            super().data_received(data)
            if not self._awaiting_headers():
                self._disarm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)

        def _awaiting_headers(self) -> bool:
            # No request in progress: the next one's headers are (partly) on their way.
            return self.cycle is None or self.cycle.response_complete

        def _arm_header_timer(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_timed_out)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timed_out(self) -> None:
            self._header_timer = None
            if self._awaiting_headers() and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol
