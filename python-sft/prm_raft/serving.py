"""What the two model servers (``policy_server``, ``prm_server``) share: FastAPI on uvicorn, one error body, the
limits that keep a server up under abuse, the common CLI flags and the startup pattern.

- Errors are ``{"error": {"message", "type", "param", "code"}}`` (vLLM's and OpenAI's shape; clients read
  ``error.message``), and every 4xx message says what was wrong and what to do.
- Limits: the request body (``--max-body-bytes``, 413; a too large ``Content-Length`` is refused before a byte of
  the body is read), the time a client has to send a whole request (``--receive-timeout``: the connection is
  closed), a listen backlog of ``BACKLOG``, idle keep-alive connections closed after ``KEEP_ALIVE_SECONDS``.
  A malformed request line or header (``Content-Length: abc``) is a 400, never a 5xx.
- Startup: the server listens at once and answers 503 until the model is loaded in a background thread; then
  ``GET /health`` answers 200 and one ``<name> ready: ...`` line is logged. A model that cannot be served
  exits 2.
- One log line per request on stderr: ``<name> <client> <method> <path> <status> <seconds>s <summary>``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import socket
import sys
import threading
import time
import traceback
from typing import Any, Callable

import h11
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_RECEIVE_TIMEOUT = 60.0
BACKLOG = 2048  # 1,000 clients connecting at once wait in the queue instead of being refused (capped by somaxconn)
KEEP_ALIVE_SECONDS = 5  # above Node's fetch (4 s idle), so a kept-alive socket is closed by the client first
SHUTDOWN_SECONDS = 5  # a generation in flight does not hold a SIGTERM for minutes

_ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    413: "PayloadTooLargeError",
    503: "ServiceUnavailableError",
    507: "InsufficientStorageError",
}


class ApiError(Exception):
    """An answer other than 200: the status, a message that says what to do, and the request field at fault."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    etype = _ERROR_TYPES.get(status, "InternalServerError" if status >= 500 else "BadRequestError")
    return {"error": {"message": message, "type": etype, "param": param, "code": status}}


def _error_response(request: Request, status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    request.state.summary = message
    return JSONResponse(error_body(status, message, param), status_code=status, headers=headers)


def validation_message(errors: list[dict[str, Any]], usage: str) -> tuple[str, str | None]:
    """The first of pydantic's errors as one sentence naming the field, with the request's expected shape."""
    e = errors[0]
    loc = [p for p in e["loc"] if p != "body"]
    if e["type"] == "json_invalid":
        return f"request body is not valid JSON: {e.get('ctx', {}).get('error', e['msg'])} (at character {loc[0]}). {usage}", None
    if not loc:
        return f"request body must be a JSON object. {usage}", None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    got = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {json.dumps(e.get('input'))[:80]})"
    return f"'{where}': {e['msg']}{got}. {usage}", str(loc[0]) if loc else None


async def loaded(request: Request) -> Any:
    """The loaded model (a FastAPI dependency; async, so it never waits for a worker thread): 503 while loading."""
    model = request.app.state.model
    if model is None:
        raise ApiError(503, "the model is still loading; retry when GET /health answers 200")
    return model


def create_app(usage: str, max_body_bytes: int) -> FastAPI:
    """An app with `/health`, the error handlers and the body limit; `app.state.model` is None until loaded.
    `usage` (the request's expected shape) ends every validation error's message."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, max_body_size=max_body_bytes)
    app.state.model = None

    @app.get("/health")
    async def health(_: Any = Depends(loaded)) -> Response:  # async: answered even while every worker thread computes
        return Response(status_code=200)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(request, exc.status, exc.message, exc.param)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(list(exc.errors()), usage)
        return _error_response(request, 400, message, param)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        method, path = request.method, request.url.path
        if exc.status_code == 404:
            routes = ", ".join(f"{m} {r.path}" for r in app.routes for m in sorted(getattr(r, "methods", None) or ()) if m != "HEAD")
            return _error_response(request, 404, f"unknown path: {method} {path}; this server answers {routes}")
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            return _error_response(request, 405, f"method {method} is not allowed on {path}; use {allowed}")
        if exc.status_code == 413:  # a body over the limit that did not announce its size (chunked)
            return _error_response(request, 413, _too_large_message(max_body_bytes), headers={"Connection": "close"})
        if isinstance(exc.__cause__, ClientDisconnect):  # only the log sees this: the client is gone
            return _error_response(request, 400, "the client went away before sending the whole body")
        return _error_response(request, exc.status_code, str(exc.detail))

    return app


def _too_large_message(max_body_bytes: int, size: int | None = None) -> str:
    what = "request body" if size is None else f"request body of {size} bytes"
    return (
        f"{what} is over this server's limit of {max_body_bytes} bytes; send fewer items or prompts per request, "
        "or start the server with a larger --max-body-bytes"
    )


class _Edge:
    """The outermost ASGI layer: one log line per request, and a 413 in our format for an announced body over the
    limit (FastAPI's own limit answers that case in plain text, before the app's error handlers run)."""

    def __init__(self, app: FastAPI, name: str, max_body_bytes: int) -> None:
        self.app = app
        self.name = name
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.monotonic()
        status = 500  # what the client gets when the app fails before it answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length")  # h11 has checked it is digits
            if length is not None and int(length) > self.max_body_bytes:
                message = _too_large_message(self.max_body_bytes, int(length))
                scope.setdefault("state", {})["summary"] = message
                response = JSONResponse(error_body(413, message), status_code=413, headers={"Connection": "close"})
                await response(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            client = (scope.get("client") or ("-",))[0]
            summary = scope.get("state", {}).get("summary", "")
            line = f"{self.name} {client} {scope['method']} {scope['path']} {status} {time.monotonic() - t0:.3f}s {summary}"
            print(line.rstrip(), file=sys.stderr, flush=True)


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with two things it lacks: a deadline for receiving a whole request (its keep-alive
    timer restarts on every byte received, so a client that trickles a request holds the connection forever), and a
    malformed request answered in our JSON error format instead of plain text. It overrides internals of the
    uvicorn in uv.lock (`cycle.more_body`, `send_400_response`): tests/test_policy_server.py checks both behaviours."""

    def __init__(self, *args: Any, receive_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receive_timeout = receive_timeout
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_deadline()  # the next request on a kept-alive connection has as long

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        super().connection_lost(exc)

    def _arm_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.loop.call_later(self.receive_timeout, self._on_deadline)

    def _on_deadline(self) -> None:
        # Still receiving: no request yet, a response already sent (waiting for the next one), or a body not whole.
        receiving = self.cycle is None or self.cycle.response_complete or self.cycle.more_body
        if receiving and not self.transport.is_closing():
            if self.cycle is not None and not self.cycle.response_complete:
                self.logger.warning("closed a connection whose request was not whole after %gs (--receive-timeout)", self.receive_timeout)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        body = error_body(400, "malformed HTTP request (a bad request line or header, e.g. a Content-Length that is not a number); send a valid HTTP/1.1 request")
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=data), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def uvicorn_server(app: FastAPI, name: str, max_body_bytes: int, receive_timeout: float) -> uvicorn.Server:
    """The uvicorn server both model servers run (tests run it on a thread): our protocol, backlog and timeouts."""
    config = uvicorn.Config(
        _Edge(app, name, max_body_bytes),
        http=functools.partial(_Protocol, receive_timeout=receive_timeout),  # type: ignore[arg-type]
        lifespan="off",
        backlog=BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        access_log=False,  # _Edge logs every request, with what it did
        log_level="warning",
    )
    return uvicorn.Server(config)


def add_server_args(ap: argparse.ArgumentParser, default_port: int) -> None:
    """The flags both servers take."""
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=default_port)
    ap.add_argument("--served-model-name", default=None, help="the model name clients send (default: the dir's basename)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--max-body-bytes", type=positive_int, default=DEFAULT_MAX_BODY_BYTES, help="largest request body; a larger one is answered 413")
    ap.add_argument("--receive-timeout", type=float, default=DEFAULT_RECEIVE_TIMEOUT, help="seconds a client has to send a whole request before the connection is closed")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def serve(app: FastAPI, args: argparse.Namespace, name: str, load: Callable[[], Any], describe: Callable[[Any], str], bad_model: tuple[type[Exception], ...] = ()) -> int:
    """Listen on --host/--port at once, load the model on a thread (`load()`; a `bad_model` error exits 2), log
    `<name> ready: <describe(model)>`, serve until SIGTERM or SIGINT. Returns the exit code."""
    sock = socket.create_server((args.host, args.port), backlog=BACKLOG)
    host, port = sock.getsockname()[:2]
    server = uvicorn_server(app, name, args.max_body_bytes, args.receive_timeout)
    exit_code = 0

    def load_model() -> None:
        nonlocal exit_code
        t0 = time.monotonic()
        try:
            app.state.model = load()
        except bad_model as e:
            print(f"{name}: {e}", file=sys.stderr, flush=True)
            exit_code, server.should_exit = 2, True
            return
        except Exception:  # noqa: BLE001 - a crash while loading: retryable, with its traceback
            traceback.print_exc()
            exit_code, server.should_exit = 1, True
            return
        print(f"{name} ready: {describe(app.state.model)}, loaded in {time.monotonic() - t0:.1f}s", file=sys.stderr, flush=True)

    print(f"{name} listening on http://{host}:{port} (loading {args.model})", file=sys.stderr, flush=True)
    threading.Thread(target=load_model, name="load-model", daemon=True).start()
    server.run(sockets=[sock])
    return exit_code
