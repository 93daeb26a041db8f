"""The router: one inbound call -> attempt plan -> upstream -> reply in the client's format.

Translation is ``render_B(parse_A(x))`` through the IR; a call whose upstream speaks the
client's own format passes bytes through (model replaced) while a parser taps the stream for
usage. Failover is allowed until the first byte reaches the client; after that, errors go
in-band in the client's format. Observers (call log writer, inspector) see every call at start
and finish; the engine itself never waits on storage. Streams are carried by
:mod:`router.engine.stream`, which reports back through :class:`StreamHooks` only; what a call
is (inbound, info, reply, guard protocol) is in :mod:`router.engine.call`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from router import __version__, ir, jsonfast
from router.engine.call import (
    CallInfo,
    Guard,
    Inbound,
    Lease,
    Observer,
    OpenGuard,
    PriceFn,
    Reply,
    Timeouts,
)
from router.engine.stream import StreamOutcome, StreamPipe, error_from_event
from router.errors import AllAttemptsFailed, Attempt, LlmtapError, UpstreamError
from router.formats import Codec, get_codec
from router.formats.sse import sse_comment
from router.providers import call_format, forwarded_headers, open_call
from router.providers.http import UpstreamCall
from router.providers.session import UpstreamSession
from router.routing.resolve import Plan, Resolver, Step
from router.usage import complete_usage, request_tokens

log = logging.getLogger("llmtap.router")

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def _never() -> bool:
    return False


class Router:
    def __init__(
        self,
        resolver: Resolver,
        client: UpstreamSession | None = None,
        *,
        price: PriceFn,
        guard: Guard | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.resolver = resolver
        # The one upstream session, opened and closed by its owner (the web app's cleanup_ctx).
        self.client = client
        self.price = price
        self.guard: Guard = guard or OpenGuard()
        self.timeouts = timeouts or Timeouts()
        self.observers: list[Observer] = []
        # What must survive a kill -9 of a call the client saw finish (the call log: one row
        # built and journaled, router/store/writer). Called as the finish is observed: for a
        # whole reply, in the loop step right after its bytes were written (spec: a kill -9
        # may lose calls finished within 50 ms); for a stream, before its end goes out. Keep
        # them cheap; everything else observes after that step (``observers``).
        self.durable_observers: list[Observer] = []
        # True while the finish of a call must be observed with the durable observers too: a
        # recording session persists the inspector record, so it is journaled with the call
        # log (set by the composition root; nothing records by default).
        self.observe_finish_now: Callable[[], bool] = _never

    @property
    def session(self) -> UpstreamSession:
        """The upstream session; calls before it opens (or after it closed) are a bug."""
        if self.client is None:
            raise RuntimeError("the router's upstream session is not open")
        return self.client

    # ------------------------------------------------------------------ entry points

    def parse(self, inbound: Inbound) -> ir.Request:
        body = inbound.body
        if inbound.path_model:  # Gemini's, from the URL path
            body = {**body, "model": inbound.path_model}
        req = get_codec(inbound.format).parse_request(body)
        if inbound.path_stream is not None:
            req.stream = inbound.path_stream
        if inbound.model_override:
            req.model = inbound.model_override
        if inbound.effort_override is not None:
            effort = inbound.effort_override
            req.reasoning_effort = None if effort == "none" else cast(ir.Effort, effort)
            req.thinking_budget = None
        return req

    async def handle(self, inbound: Inbound) -> Reply:
        """Route one call. Raises :class:`LlmtapError` for anything the client should see as
        an HTTP error (the reply was not started)."""
        info = CallInfo(inbound)
        try:
            req = self.parse(inbound)
            info.request = req
            info.requested_model = req.model
            info.parse_dropped = list(req.dropped)
            info.streamed = req.stream
            plan = self.resolver.plan(
                req.model, pinned=inbound.pinned, estimate=lambda: request_tokens(req)
            )
        except LlmtapError as exc:
            self._fail(info, exc)
            raise
        self._notify(info, "start")
        try:
            return await self._run_plan(info, req, plan)
        except LlmtapError as exc:
            self._fail(info, exc)
            raise
        except BaseException as exc:  # cancelled by a client disconnect, or a bug
            self._fail(info, exc)
            raise

    # ------------------------------------------------------------------ plan walking

    async def _run_plan(self, info: CallInfo, req: ir.Request, plan: Plan) -> Reply:
        attempts = info.attempts
        for skip in plan.skipped:
            wait = self.guard.retry_in(skip.step)
            attempts.append(_attempt(skip.step, skipped=skip.reason, retry_after=wait))
        last_error: LlmtapError | None = None
        steps = plan.steps
        for pos, step in enumerate(steps):
            lease, reason = await self.guard.admit(step, last=pos == len(steps) - 1)
            if lease is None:
                wait = self.guard.retry_in(step)
                attempts.append(_attempt(step, skipped=reason or "unavailable", retry_after=wait))
                continue
            started = time.perf_counter()
            released = False
            try:
                reply = await self._attempt(info, req, step, lease)
                released = True  # the reply (or its stream) owns the lease now
                return reply
            except UpstreamError as exc:
                self.guard.failure(step, exc)
                # The cooldown the failure started, else what the upstream asked for.
                wait = self.guard.retry_in(step)
                attempts.append(
                    _attempt(
                        step,
                        status=exc.upstream_status,
                        error=exc.message,
                        t=started,
                        retry_after=exc.retry_after if wait is None else wait,
                    )
                )
                last_error = exc
                if not exc.retryable:
                    break
            except BaseException as exc:  # the client went away (or a bug): log the attempt too
                status, error = _abort_status(exc)
                attempts.append(_attempt(step, status=status, error=error, t=started))
                raise
            finally:
                if not released:
                    lease.release()
        raise AllAttemptsFailed(attempts, last_error)

    async def _attempt(self, info: CallInfo, req: ir.Request, step: Step, lease: Lease) -> Reply:
        inbound = info.inbound
        target = call_format(step.connection, inbound.format)
        same = target == inbound.format
        codec_in = get_codec(inbound.format)
        codec_out = codec_in if same else get_codec(target)
        body = self._upstream_body(inbound, req, step, target, same, codec_out, info.parse_dropped)
        extra = forwarded_headers(step.connection.provider, inbound.headers, same_format=same)
        info.step, info.target_format = step, target
        info.upstream_body, info.upstream_extra_headers = body, extra
        info.t_sent = time.perf_counter()
        call = await open_call(
            self.session,
            step.connection,
            step.model,
            body,
            stream=req.stream,
            api_format=target,
            first_byte_timeout=self.timeouts.first_byte,
            idle_timeout=self.timeouts.idle,
            max_response_bytes=self.timeouts.max_response_bytes,
            extra_headers=extra,
        )
        info.t_headers = time.perf_counter()
        try:
            streamed = req.stream and "text/event-stream" in call.headers.get("content-type", "")
            if not streamed:
                reply = await self._whole(info, req, step, call, codec_in, codec_out, same)
                call_done = True
            else:
                call_done = False
        except BaseException:
            await call.aclose()
            raise
        if call_done:
            lease.release()
            return reply
        pipe = StreamPipe(
            call, req, codec_in, codec_out, _StreamAttempt(self, info, req, step, lease)
        )
        first = await self._first_content(pipe, step, info.t_sent)
        return Reply(
            200, {**SSE_HEADERS, **self._headers(info, final=False)}, stream=pipe.run(first)
        )

    async def _first_content(self, pipe: StreamPipe, step: Step, t_sent: float) -> bytes:
        """The stream's first content, within the first-byte timeout counted from the request:
        keep-alives (SSE comments, Anthropic pings) reset the idle timeout but are not content,
        so without this bound an upstream that only pings would hold the call (and failover)
        for ever. Raises UpstreamError when nothing usable arrived: the caller fails over."""
        limit = self.timeouts.first_byte
        budget = max(0.0, limit - (time.perf_counter() - t_sent))
        try:
            async with asyncio.timeout(budget):
                return await pipe.prefetch()
        except TimeoutError:
            conn = step.connection
            raise UpstreamError(
                f"{conn.name} ({conn.provider}) sent no content within {limit:g}s",
                kind="timeout",
                provider=conn.name,
            ) from None

    def _upstream_body(
        self,
        inbound: Inbound,
        req: ir.Request,
        step: Step,
        target: str,
        same: bool,
        codec_out: Codec,
        parse_dropped: list[str],
    ) -> dict[str, Any]:
        if same:
            req.dropped = []  # the client's body went as it was: nothing was dropped
            return codec_out.passthrough_body(inbound.body, step.model, stream=req.stream)
        req.model = step.model
        # What parsing already could not carry stays listed; each attempt adds its own.
        req.dropped = list(parse_dropped)
        return codec_out.render_request(req)

    async def _whole(
        self,
        info: CallInfo,
        req: ir.Request,
        step: Step,
        call: UpstreamCall,
        codec_in: Codec,
        codec_out: Codec,
        same: bool,
    ) -> Reply:
        data = await call.read_json()
        await call.aclose()
        _check_reply(data, codec_out, step)
        resp = codec_out.parse_response(data)
        if req.stream:  # asked to stream, upstream answered whole: stream it anyway
            renderer = codec_in.stream_renderer(req)
            info.t_first_token = time.perf_counter()
            self._finish_ok(info, req, step, resp)
            payload = b"".join(renderer.render(ev) for ev in ir.response_events(resp))
            payload = self._trailer(info) + payload + renderer.finish()
            info.response_bytes = payload
            return Reply(
                200, {**SSE_HEADERS, **self._headers(info, final=True)}, stream=_once(payload)
            )
        out = data if same else codec_in.render_response(resp, req)
        info.t_first_token = time.perf_counter()
        payload = jsonfast.dumps(out)
        info.response_bytes = payload
        # aiohttp writes a returned whole reply in this same step of the loop: the finish is
        # observed in the next one, so the call log's row is not on the reply's path.
        self._finish_ok(info, req, step, resp, after_reply=True)
        headers = {"Content-Type": "application/json", **self._headers(info, final=True)}
        return Reply(200, headers, body=payload)

    # ------------------------------------------------------------------ bookkeeping

    def _finish_ok(
        self,
        info: CallInfo,
        req: ir.Request,
        step: Step,
        resp: ir.Response,
        *,
        after_reply: bool = False,
    ) -> None:
        """Settle a call that succeeded; ``after_reply``: observe its finish once the current
        step of the loop is over (the whole reply it returns has been written by then)."""
        info.t_done = time.perf_counter()
        info.status = 200
        info.response = resp
        info.usage = complete_usage(resp.usage, req, resp)
        info.cost_usd = self.price(step.model, info.usage)
        info.attempts.append(_attempt(step, status=200, t=info.t_sent))
        self.guard.success(step, info.latency_ms or 0.0, info.ttft_ms)
        if after_reply:
            _after_this_step(self._notify, info, "finish")
        else:
            self._notify(info, "finish")

    def _fail(self, info: CallInfo, exc: BaseException) -> None:
        if info.finished:
            return
        info.t_done = time.perf_counter()
        if isinstance(exc, LlmtapError):
            info.status, info.error = exc.status, exc.message
        else:
            info.status, info.error = _abort_status(exc)
            if info.status == 500:
                log.exception("router call %s failed", info.inbound.request_id, exc_info=exc)
        # Refused calls (bad body, unknown model) are reported too: the inspector shows them,
        # the call log skips what never reached routing.
        self._notify(info, "finish")

    def _notify(self, info: CallInfo, phase: str) -> None:
        if phase == "finish":
            if info.finished:
                return
            info.finished = True
        self._observe(info, phase, self.durable_observers)
        if not self.observers:
            return
        # Observers (the inspector record) run after the current step of the loop: the reply,
        # or the stream's next bytes, go out first. They read ``info`` as it is then; nothing
        # changes it after "finish". While a session records, a finish is observed with the
        # durable observers: what a session keeps is journaled with the call log.
        if phase == "finish" and self.observe_finish_now():
            self._observe(info, phase, self.observers)
            return
        _after_this_step(self._observe, info, phase, self.observers)

    def _observe(self, info: CallInfo, phase: str, observers: list[Observer]) -> None:
        for observer in observers:
            try:
                observer(info, phase)
            except Exception:  # an observer must never break a call
                log.exception("observer failed")

    def _headers(self, info: CallInfo, *, final: bool) -> dict[str, str]:
        h = {
            "X-OmniRoute-Request-Id": info.inbound.request_id,
            "X-OmniRoute-Version": __version__,
            "X-OmniRoute-Cache-Hit": "false",
        }
        if info.step is not None:
            h["X-OmniRoute-Model"] = info.step.model
            h["X-OmniRoute-Provider"] = info.step.connection.name
        failed = sum(1 for a in info.attempts if a.status != 200)
        if failed:
            h["X-OmniRoute-Fallback-Attempts"] = str(failed)
        if final:
            h.update(_figures(info))
        return h

    def _trailer(self, info: CallInfo) -> bytes:
        if not get_codec(info.inbound.format).sse_comments:
            return b""
        return b"".join(
            sse_comment(f"{name.lower()}={value}") for name, value in _figures(info).items()
        )


def _check_reply(data: dict[str, Any], codec: Codec, step: Step) -> None:
    """Raise the :class:`UpstreamError` a 200 reply really is: an error object (some gateways
    answer 200 + ``{"error": ...}``) or not a reply of the format at all."""
    conn = step.connection
    error = data.get("error")
    if isinstance(error, dict) and error:
        raise error_from_event(
            ir.ErrorEvent(
                str(error.get("message") or "upstream error"),
                str(error.get("type") or error.get("status") or error.get("code") or ""),
                error.get("code") if isinstance(error.get("code"), int) else None,
            )
        )
    if not codec.is_reply(data):
        raise UpstreamError(
            f"{conn.name} ({conn.provider}) returned a 200 reply that is not a {codec.name} "
            "response",
            kind="protocol",
            provider=conn.name,
        )


def _abort_status(exc: BaseException) -> tuple[int, str]:
    """What a call or attempt ended by ``exc`` (not an LlmtapError) is logged as."""
    if isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
        return 499, "client disconnected"
    return 500, "internal error"


def _figures(info: CallInfo) -> dict[str, str]:
    usage = info.usage or ir.Usage()
    # A model without a price has no cost figure at all: "0" would read as free.
    cost = {} if info.cost_usd is None else {"X-OmniRoute-Response-Cost": f"{info.cost_usd:.10f}"}
    return {
        **cost,
        "X-OmniRoute-Tokens-In": str(usage.input_tokens),
        "X-OmniRoute-Tokens-Out": str(usage.output_tokens),
        "X-OmniRoute-Latency-Ms": str(round(info.latency_ms or 0.0)),
    }


def _after_this_step(fn: Callable[..., None], *args: Any) -> None:
    """Call ``fn(*args)`` once the current step of the event loop is over; right away when
    there is no loop (a synchronous caller)."""
    try:
        asyncio.get_running_loop().call_soon(fn, *args)
    except RuntimeError:
        fn(*args)


def _attempt(
    step: Step,
    *,
    status: int | None = None,
    error: str | None = None,
    skipped: str | None = None,
    t: float | None = None,
    retry_after: float | None = None,
) -> Attempt:
    latency = None if t is None else round((time.perf_counter() - t) * 1000, 2)
    return Attempt(
        connection_id=step.connection.id,
        provider=step.connection.name,
        model=step.model,
        status=status,
        error=error,
        skipped=skipped,
        latency_ms=latency,
        retry_after=retry_after,
    )


async def _once(payload: bytes) -> AsyncIterator[bytes]:
    yield payload


class _StreamAttempt:
    """The router's side of one streamed attempt (:class:`router.engine.stream.StreamHooks`):
    timing, usage and cost, the guard's verdict, the lease and the finish notification."""

    __slots__ = ("info", "lease", "req", "router", "step")

    def __init__(
        self, router: Router, info: CallInfo, req: ir.Request, step: Step, lease: Lease
    ) -> None:
        self.router, self.info, self.req, self.step, self.lease = router, info, req, step, lease

    def first_token(self) -> None:
        if self.info.t_first_token is None:
            self.info.t_first_token = time.perf_counter()

    def trailer(self, response: ir.Response) -> bytes:
        return self.router._trailer(self._settle(response))

    def finished(self, outcome: StreamOutcome) -> None:
        self.lease.release()
        info = self._settle(outcome.response)
        info.response_bytes = outcome.sent
        attempt_status = 200
        if outcome.error is not None:
            # The client got 200 and then the error in-band; the attempt failed upstream.
            info.status, info.error = 200, outcome.error.message
            attempt_status = outcome.error.status
            self.router.guard.failure(self.step, outcome.error)
        elif not outcome.completed:
            info.status, info.error = 499, "client disconnected"
            attempt_status = 499
        else:
            info.status = 200
            self.router.guard.success(self.step, info.latency_ms or 0.0, info.ttft_ms)
        info.attempts.append(
            _attempt(self.step, status=attempt_status, error=info.error, t=info.t_sent)
        )
        self.router._notify(info, "finish")

    def _settle(self, response: ir.Response) -> CallInfo:
        """Fold the stream so far into usage and cost (for the trailer and the call log)."""
        info = self.info
        info.response = response
        info.usage = complete_usage(response.usage, self.req, response)
        info.cost_usd = self.router.price(self.step.model, info.usage)
        info.t_done = time.perf_counter()
        return info


def count_tokens(inbound: Inbound) -> dict[str, int]:
    """``/v1/messages/count_tokens``, counted locally (no upstream call): exact for OpenAI
    models, the documented estimate for others (:mod:`router.usage`)."""
    body = dict(inbound.body)
    body.setdefault("max_tokens", 1)
    req = get_codec("anthropic").parse_request(body)
    return {"input_tokens": request_tokens(req)}


def model_list(router: Router) -> list[dict[str, Any]]:
    return [
        {"id": name, "object": "model", "owned_by": owner, "created": 0}
        for name, owner in router.resolver.catalog.model_ids()
    ]
