"""Small real servers that receive what the monitor sends: an HTTP receiver and an SMTP server.

    with HTTPReceiver() as receiver:
        receiver.respond_with(503, times=1)     # the next request fails, later ones get 200
        post_to(receiver.url + "/hook")
        body = receiver.wait_for(1)[0].json()
"""
from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.support.servers import free_port, wait_until


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the receiver saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Return the body decoded as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Response:
    """What the receiver answers: a status, a body, extra headers and an optional delay."""

    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


class HTTPReceiver:
    """A real HTTP server on a free loopback port that records every request it gets."""

    def __init__(self, response: Response | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._default = response or Response()
        self._queued: list[Response] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler_for(self))
        self._server.daemon_threads = True  # a delayed answer must not hold up stop()
        # a short poll interval keeps stop() fast: shutdown() waits for the next poll
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        """Return the base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def bodies(self) -> list[Any]:
        """Return the JSON bodies of the requests received so far."""
        return [request.json() for request in self.requests]

    def respond_with(self, status: int, body: bytes | str = b"", *, times: int | None = None,
                     headers: Mapping[str, str] | None = None, delay: float = 0.0) -> None:
        """Answer the next `times` requests (every later one if None) with this status."""
        raw = body.encode() if isinstance(body, str) else body
        response = Response(status, raw, dict(headers or {}), delay)
        with self._lock:
            if times is None:
                self._default, self._queued = response, []
            else:
                self._queued.extend([response] * times)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Wait until at least `count` requests arrived and return them all."""
        wait_until(lambda: len(self.requests) >= count, timeout,
                   message=f"{count} request(s) at {self.url}")
        return self.requests

    def clear(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    def start(self) -> Self:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> Response:
        with self._lock:
            self._requests.append(request)
            return self._queued.pop(0) if self._queued else self._default


def _handler_for(receiver: HTTPReceiver) -> type[BaseHTTPRequestHandler]:
    """Build a request handler class bound to one receiver."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = receiver._record(RecordedRequest(self.command, self.path, headers, body))
            time.sleep(answer.delay)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SMTP server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None

    @property
    def message(self) -> EmailMessage:
        """Return the parsed message."""
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def text(self) -> str:
        """Return the plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())


class SMTPReceiver:
    """A real SMTP server (aiosmtpd) on a free loopback port that records every message.

    With `users`, it offers AUTH LOGIN/PLAIN over plain text (tests only) and refuses
    any other user or password.
    """

    def __init__(self, users: Mapping[str, str] | None = None) -> None:
        self.users = dict(users or {})
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        options: dict[str, Any] = {}
        if self.users:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self, hostname="127.0.0.1", port=free_port(), **options)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def messages(self) -> list[ReceivedMail]:
        """Return a copy of the messages received so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Wait until at least `count` messages arrived and return them all."""
        wait_until(lambda: len(self.messages) >= count, timeout,
                   message=f"{count} mail(s) on port {self.port}")
        return self.messages

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        """Record the message (aiosmtpd handler hook)."""
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        raw = envelope.original_content or b""
        mail = ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), raw, login)
        with self._lock:
            self._messages.append(mail)
        return "250 Message accepted for delivery"

    def _authenticate(self, server: Any, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        if self.users.get(user) != password:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data.login)

    def start(self) -> Self:
        """Start the server thread."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server thread."""
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
