"""The one way llmtap runs OS commands: argument lists (never a shell), its own PATH, and
failures turned into sanitized ``CommandError``s fit to show in the API."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from router.errors import LlmtapError

# Exit codes used when the command never ran, like the shells and timeout(1) do.
NOT_FOUND = 127
TIMED_OUT = 124


@dataclass(frozen=True, slots=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class CommandError(LlmtapError):
    """An OS command failed. The message names the command (not its full path), the exit code
    and the first lines of its error output, with the home directory shortened to ``~``."""

    status = 500
    type = "server_error"
    code = "os_command_failed"

    def __init__(self, command: str, returncode: int, output: str) -> None:
        excerpt = _excerpt(output)
        what = {NOT_FOUND: "was not found", TIMED_OUT: "timed out"}.get(
            returncode, f"exited with {returncode}"
        )
        super().__init__(f"`{command}` {what}" + (f": {excerpt}" if excerpt else ""))
        self.command = command
        self.returncode = returncode


class CommandRunner:
    """Runs commands found on ``path`` (default: the process PATH) with ``env`` (default: the
    process environment). Tests give it a PATH of recording fakes."""

    def __init__(self, path: str | None = None, env: Mapping[str, str] | None = None) -> None:
        base = dict(os.environ if env is None else env)
        self.path = path if path is not None else base.get("PATH", os.defpath)
        base["PATH"] = self.path
        # Parsed output (networksetup, reg, gsettings) must not depend on the user's language.
        base["LC_ALL"] = "C"
        self.env = base

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.path)

    def run(
        self,
        argv: list[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 30,
    ) -> Completed:
        """Run ``argv``; with ``check`` a non-zero exit raises CommandError, without it every
        outcome (including not found and timeout) is a Completed."""
        if not argv:
            raise ValueError("empty command")
        name = Path(argv[0]).name
        exe = self.which(argv[0])
        if exe is None:
            return self._fail(check, name, NOT_FOUND, f"{name}: command not found")
        try:
            proc = subprocess.run(
                [exe, *argv[1:]],
                input=input,
                capture_output=True,
                text=True,
                errors="replace",
                env=self.env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return self._fail(check, name, TIMED_OUT, f"no answer after {timeout:g}s")
        except OSError as exc:
            return self._fail(check, name, NOT_FOUND, exc.strerror or str(exc))
        done = Completed(proc.returncode, proc.stdout, proc.stderr)
        if check and done.returncode != 0:
            raise CommandError(name, done.returncode, done.stderr.strip() or done.stdout)
        return done

    @staticmethod
    def _fail(check: bool, name: str, code: int, message: str) -> Completed:
        if check:
            raise CommandError(name, code, message)
        return Completed(code, "", message)


def _excerpt(output: str, lines: int = 3, limit: int = 300) -> str:
    text = " | ".join(line.strip() for line in output.strip().splitlines()[:lines] if line.strip())
    home = str(Path.home())
    if home not in ("", "/"):
        text = text.replace(home, "~")
    return text[:limit]
