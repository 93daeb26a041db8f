"""Run the real agent CLIs (Claude Code, Codex, OpenCode) offline against loopback servers.

The binaries are the npm packages pinned in ``tests/agents/npm/package-lock.json``, installed by
``./scripts/test`` (``scripts/agents``: ``npm ci`` into the git-ignored
``tests/agents/npm/node_modules``). Where they are missing the agent tests skip with the reason;
under ``CI`` they fail instead, so CI cannot silently stop running them.

Every run gets:

* an isolated HOME (and XDG dirs, ``CLAUDE_CONFIG_DIR``, ``CODEX_HOME``, an ``opencode.json``)
  under the test's temp dir, so nothing is read from or written to the machine's own config;
* telemetry, error reporting, auto-update, model-list fetches, plugin installs and analytics
  switched off by environment and config;
* an :class:`OfflineGuard`: ``HTTP(S)_PROXY`` point at a loopback proxy that refuses every
  request and records its target, with ``NO_PROXY`` covering loopback. Whatever an agent tries
  to reach outside 127.0.0.1 fails at once (no DNS wait) and shows up in ``guard.attempts``;
  the tests assert that list is empty;
* non-interactive mode (``claude -p``, ``codex exec``, ``opencode run``), stdin closed, and a
  bounded timeout that kills the whole process group.

Direct mode: pass ``target=Target(base_url, model)`` and the agent is configured to send its
model calls there (Claude Code: ``ANTHROPIC_BASE_URL``; Codex: a ``config.toml`` model provider
with ``wire_api = "responses"`` at ``{base_url}/v1``; OpenCode: an ``@ai-sdk/openai-compatible``
provider at ``{base_url}/v1``, which opencode bundles, so nothing is installed at run time).

Divert mode (reused by the ``llmtap run`` / bridge tests): pass ``target=None`` and the agent
keeps its DEFAULT hosts (api.anthropic.com, api.openai.com, ...) with a dummy API key, and
``env`` carries what the divert needs, for example::

    run = await run_agent(
        "claude", "say hi", home=tmp_path / "home", model="claude-sonnet-4-5",
        env={
            "HTTPS_PROXY": "http://127.0.0.1:<mitmproxy port>",
            "NO_PROXY": "",                        # or whatever the test wants
            "NODE_EXTRA_CA_CERTS": str(ca_pem),    # Claude Code / OpenCode (Bun, Node)
            "SSL_CERT_FILE": str(ca_pem),          # Codex (Rust) trusts this bundle
        },
    )

``env`` is applied last, so it overrides the guard's proxy variables and any default here;
a value of ``None`` removes a variable. ``extra_args`` are appended to the agent's command line.
Under ``llmtap run``, pass its command line as ``wrapper`` (``[..., "run", ..., "--"]``): the
agent is then started by it, with the same isolated environment plus what ``run`` adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NPM_DIR = Path(__file__).resolve().parent / "npm"
BIN_DIR = NPM_DIR / "node_modules" / ".bin"
AGENTS = ("claude", "codex", "opencode")
DUMMY_KEY = "sk-llmtap-agent-test-0123456789abcdef"
OPENCODE_PROVIDER = "llmtap"  # the provider id in the generated opencode.json


def binary(agent: str) -> Path:
    """The installed agent binary; skips the test (fails under CI) when it is not installed."""
    path = BIN_DIR / agent
    if path.exists() and os.access(path, os.X_OK):
        return path
    reason = (
        f"agent CLI {agent!r} not installed at {path}: run ./scripts/agents "
        "(needs npm; ./scripts/test runs it)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class OfflineGuard:
    """A loopback HTTP proxy that answers 403 to everything and remembers what was asked.

    Agents honour ``HTTP(S)_PROXY``, so a request to the internet becomes a ``CONNECT host:443``
    here, is refused at once and lands in ``attempts``.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            if line:
                self.attempts.append(line.decode("latin-1").strip())
            writer.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> OfflineGuard:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass(frozen=True)
class Target:
    """Where a direct-mode agent sends its model calls: a server root URL and a model name."""

    base_url: str  # e.g. the router's http://127.0.0.1:port (agents add /v1/... themselves)
    model: str
    api_key: str = DUMMY_KEY
    # Codex: the provider supports the Responses WebSocket (Codex then tries it first).
    websockets: bool = False


@dataclass
class AgentRun:
    agent: str
    argv: list[str]
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    home: Path
    attempts: list[str] = field(default_factory=list)  # what the offline guard refused

    def describe(self) -> str:
        return (
            f"{self.agent} exited {self.returncode}\n--- argv: {self.argv}\n"
            f"--- stdout:\n{self.stdout[-4000:]}\n--- stderr:\n{self.stderr[-4000:]}\n"
            f"--- refused outbound: {self.attempts}"
        )


def base_env(home: Path, proxy: str | None) -> dict[str, str]:
    """A clean environment: nothing inherited but PATH, every agent quiet and self-contained."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "USER": "llmtap-test",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        # Claude Code
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        # Codex
        "CODEX_HOME": str(home / ".codex"),
        # OpenCode
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        "OPENCODE_DISABLE_CLAUDE_CODE": "1",
        "OPENCODE_DISABLE_EXTERNAL_SKILLS": "1",
        "OPENCODE_DISABLE_TERMINAL_TITLE": "1",
        # OpenCode installs config-dir plugins with npm's machinery; never from the registry.
        "npm_config_offline": "true",
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
    }
    if proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = proxy
    return env


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _configure(
    agent: str,
    home: Path,
    target: Target | None,
    model: str | None,
    opencode_config: Mapping[str, object] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Agent-specific config files and environment; returns (argv after the binary, env)."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    key = target.api_key if target else DUMMY_KEY
    model = target.model if target else model
    if agent == "claude":
        env = {"ANTHROPIC_API_KEY": key}
        args: list[str] = []
        if target:
            env["ANTHROPIC_BASE_URL"] = target.base_url
        if model:
            args += ["--model", model]
            # The background "small fast" calls go to the same model, not a Haiku we can't route.
            env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] = env["ANTHROPIC_SMALL_FAST_MODEL"] = model
        return args, env
    if agent == "codex":
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        lines = ["check_for_update_on_startup = false"]
        if model:
            lines.append(f"model = {_toml(model)}")
        if target:
            lines += [
                'model_provider = "llmtap"',
                "[model_providers.llmtap]",
                'name = "llmtap"',
                f"base_url = {_toml(target.base_url + '/v1')}",
                'env_key = "LLMTAP_API_KEY"',
                'wire_api = "responses"',
            ]
            if target.websockets:
                lines.append("supports_websockets = true")
        lines += ["[analytics]", "enabled = false", "[feedback]", "enabled = false"]
        lines += ["[features]", "plugins = false"]
        (codex_home / "config.toml").write_text("\n".join(lines) + "\n")
        env = {"LLMTAP_API_KEY": key, "OPENAI_API_KEY": key, "CODEX_API_KEY": key}
        return ["exec", "--skip-git-repo-check", "--color", "never"], env
    if agent == "opencode":
        config: dict[str, object] = {
            "$schema": "https://opencode.ai/config.json",
            "autoupdate": False,
            "share": "disabled",
        }
        args = []
        if target:
            config["provider"] = {
                OPENCODE_PROVIDER: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "llmtap",
                    "options": {"baseURL": target.base_url + "/v1", "apiKey": key},
                    "models": {target.model: {"name": target.model}},
                }
            }
            args = ["-m", f"{OPENCODE_PROVIDER}/{target.model}"]
        elif model:
            args = ["-m", model]  # e.g. "anthropic/claude-sonnet-4-5" for the default hosts
        for key, value in (opencode_config or {}).items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}  # type: ignore[dict-item]
            else:
                config[key] = value
        path = home / "opencode.json"
        path.write_text(json.dumps(config, indent=2))
        env = {
            "OPENCODE_CONFIG": str(path),
            "ANTHROPIC_API_KEY": key,
            "OPENAI_API_KEY": key,
        }
        return ["run", *args], env
    raise ValueError(f"unknown agent {agent!r}; one of {AGENTS}")


async def run_agent(
    agent: str,
    prompt: str,
    *,
    home: Path,
    target: Target | None = None,
    model: str | None = None,
    env: Mapping[str, str | None] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 90.0,
    guard: OfflineGuard | None = None,
    opencode_config: Mapping[str, object] | None = None,
    wrapper: Sequence[str] = (),
) -> AgentRun:
    """Run one non-interactive prompt with ``agent`` and collect its output.

    ``guard``: an entered :class:`OfflineGuard` to use as the proxy (one is made for the call
    when omitted). ``env`` overrides everything (see the module docstring).
    ``opencode_config``: top-level keys merged into the generated ``opencode.json``
    (``provider`` entries are added next to the generated one).
    ``wrapper``: a command line the agent's runs under, e.g.
    ``["llmtap", "run", "--port", "8080", "--"]``: it gets the same environment and is
    expected to exec the agent with its own additions (proxy variables, CA files).
    """
    exe = binary(agent)
    own_guard = guard is None
    async with contextlib.AsyncExitStack() as stack:
        if guard is None:
            guard = await stack.enter_async_context(OfflineGuard())
        seen = len(guard.attempts)
        args, agent_env = _configure(agent, home, target, model, opencode_config)
        full_env = base_env(home, guard.url) | agent_env
        for name, value in (env or {}).items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        argv = [*wrapper, str(exe), *args, *extra_args]
        argv += ["-p", prompt] if agent == "claude" else [prompt]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=home,
            env=full_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # one process group, killed as a whole at the timeout
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
            code: int | None = proc.returncode
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = await proc.communicate()
            code = None
        attempts = guard.attempts[seen:] if not own_guard else list(guard.attempts)
    return AgentRun(
        agent=agent,
        argv=argv,
        returncode=code,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        home=home,
        attempts=attempts,
    )
