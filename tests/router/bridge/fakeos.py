"""Recording fakes of the OS tools (gsettings, kwriteconfig5, networksetup, reg, netsh, ...).

Each fake is a real executable in ``tmp/bin`` that appends its argv as one JSON line to a log
and keeps a fake OS state in a JSON file, so ``get`` returns what ``set`` stored. Only the
CommandRunner built by ``FakeOS.runner()`` sees them: its PATH is ``tmp/bin`` alone."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from router.bridge.runner import CommandRunner

TOOLS = (
    "gsettings", "kwriteconfig5", "kreadconfig5", "kwriteconfig6", "kreadconfig6", "dbus-send",
    "networksetup", "reg", "netsh", "resolvectl", "dscacheutil", "killall", "ipconfig",
    "update-ca-certificates", "update-ca-trust", "certutil", "security",
)  # fmt: skip

_SCRIPT = r"""#!{python} -IS
import hashlib, json, os, sys
TOOL = {tool!r}
LOG = {log!r}
STATE = {state!r}
args = sys.argv[1:]
with open(LOG, "a") as f:
    f.write(json.dumps([TOOL, *args]) + "\n")
try:
    with open(STATE) as f:
        st = json.load(f)
except FileNotFoundError:
    st = {{}}

def save():
    with open(STATE, "w") as f:
        json.dump(st, f, indent=1)

def die(rc, msg):
    sys.stderr.write(msg + "\n")
    sys.exit(rc)

fail = st.get("fail", {{}}).get(TOOL)
if fail and fail.get("match", "") in " ".join(args):
    die(fail.get("rc", 1), fail.get("stderr", "fake failure"))

def opt(name):
    return args[args.index(name) + 1] if name in args else None

def pem_hash(path, algo):
    import base64
    body = open(path).read().split("-----BEGIN CERTIFICATE-----")[1].split("-----END")[0]
    return hashlib.new(algo, base64.b64decode("".join(body.split()))).hexdigest().upper()

if TOOL == "gsettings":
    g = st.setdefault("gsettings", {{}})
    cmd, schema, key = args[0], args[1], args[2]
    if schema not in g:
        die(1, f"No such schema “{{schema}}”")
    if cmd == "get":
        print(g[schema][key])
    elif cmd == "set":
        g[schema][key] = args[3]
        save()
    elif cmd == "reset":
        g[schema].pop(key, None)
        save()

elif TOOL.startswith(("kwriteconfig", "kreadconfig")):
    kde = st.setdefault("kde", {{}})
    grp = kde.setdefault(opt("--file"), {{}}).setdefault(opt("--group"), {{}})
    key = opt("--key")
    if TOOL.startswith("kread"):
        print(grp.get(key, ""))
    elif "--delete" in args:
        grp.pop(key, None)
        save()
    else:
        grp[key] = args[-1]
        save()

elif TOOL == "networksetup":
    ns = st["ns"]
    flag = args[0]
    if flag == "-listallnetworkservices":
        print("An asterisk (*) denotes that a network service is disabled.")
        for s in ns["order"]:
            print(s)
        sys.exit(0)
    svc = args[1]
    if svc not in ns["services"]:
        die(4, f"** Error: The parameters were not valid. {{svc}} is not a recognized network service.")
    s = ns["services"][svc]
    kind = "secure" if "secure" in flag else "web"
    if flag in ("-getwebproxy", "-getsecurewebproxy"):
        p = s[kind]
        print(f"Enabled: {{p['Enabled']}}\nServer: {{p['Server']}}\nPort: {{p['Port']}}\nAuthenticated Proxy Enabled: 0")
    elif flag in ("-setwebproxy", "-setsecurewebproxy"):
        s[kind].update(Server=args[2], Port=args[3], Enabled="Yes")
    elif flag in ("-setwebproxystate", "-setsecurewebproxystate"):
        s[kind]["Enabled"] = "Yes" if args[2] == "on" else "No"
    elif flag == "-getproxybypassdomains":
        if s["bypass"]:
            print("\n".join(s["bypass"]))
        else:
            print(f"There aren't any bypass domains set on {{svc}}.")
    elif flag == "-setproxybypassdomains":
        s["bypass"] = [] if args[2:] == ["Empty"] else args[2:]
    save()

elif TOOL == "reg":
    r = st.setdefault("reg", {{}})
    cmd, key, name = args[0], args[1], opt("/v")
    if cmd == "query":
        if name not in r:
            die(1, "ERROR: The system was unable to find the specified registry key or value.")
        t, d = r[name]
        shown = hex(int(d)) if t == "REG_DWORD" else d
        print(f"\n{{key.replace('HKCU', 'HKEY_CURRENT_USER')}}\n    {{name}}    {{t}}    {{shown}}\n")
    elif cmd == "add":
        t, d = opt("/t"), opt("/d")
        r[name] = [t, str(int(d, 0)) if t == "REG_DWORD" else d]
        save()
    elif cmd == "delete":
        r.pop(name, None)
        save()

elif TOOL == "netsh":
    w = st.setdefault("winhttp", {{"server": None, "bypass": None}})
    if args[:3] == ["winhttp", "show", "proxy"]:
        if w["server"] is None:
            print("\nCurrent WinHTTP proxy settings:\n\n    Direct access (no proxy server).\n")
        else:
            print(f"\nCurrent WinHTTP proxy settings:\n\n    Proxy Server(s) :  {{w['server']}}\n    Bypass List     :  {{w['bypass'] or '(none)'}}\n")
    elif args[:3] == ["winhttp", "set", "proxy"]:
        kv = dict(a.split("=", 1) for a in args[3:])
        w.update(server=kv["proxy-server"], bypass=kv.get("bypass-list"))
        save()
    elif args[:3] == ["winhttp", "reset", "proxy"]:
        w.update(server=None, bypass=None)
        save()

elif TOOL in ("update-ca-certificates", "update-ca-trust"):
    ca = st["ca"]
    parts = [open(ca["system_roots"]).read()] + [
        open(os.path.join(ca["anchors"], n)).read()
        for n in sorted(os.listdir(ca["anchors"])) if n.endswith(".crt")
    ]
    with open(ca["bundle"], "w") as f:
        f.write("".join(parts))

elif TOOL == "certutil" and "-addstore" in args:
    st.setdefault("root_store", []).append(pem_hash(args[-1], "sha1"))
    save()

elif TOOL == "certutil" and "-delstore" in args:
    st["root_store"] = [h for h in st.get("root_store", []) if h.lower() != args[-1].lower()]
    save()

elif TOOL == "certutil" and "-store" in args:
    for i, h in enumerate(st.get("root_store", [])):
        print(f"================ Certificate {{i}} ================\nCert Hash(sha1): {{h.lower()}}")
    print("CertUtil: -store command completed successfully.")

elif TOOL == "security" and args[0] == "add-trusted-cert":
    h = pem_hash(args[-1], "sha256")
    st.setdefault("keychain", []).append(h)
    st.setdefault("sha1", {{}})[h] = pem_hash(args[-1], "sha1")
    save()

elif TOOL == "security" and args[0] == "delete-certificate":
    sha1 = opt("-Z").upper()
    st["keychain"] = [h for h in st.get("keychain", []) if st.get("sha1", {{}}).get(h) != sha1]
    save()

elif TOOL == "security" and args[0] == "find-certificate":
    for h in st.get("keychain", []):
        print(f'SHA-256 hash: {{h}}\nSHA-1 hash: 00\nkeychain: "{{args[-1]}}"')
"""


class FakeOS:
    def __init__(self, root: Path, tools: tuple[str, ...] = TOOLS) -> None:
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = root / "calls.jsonl"
        self.state_file = root / "state.json"
        for tool in tools:
            self.add_tool(tool)

    def add_tool(self, tool: str) -> None:
        exe = self.bin / tool
        exe.write_text(
            _SCRIPT.format(
                python=sys.executable, tool=tool, log=str(self.log), state=str(self.state_file)
            )
        )
        exe.chmod(0o755)

    def remove_tool(self, tool: str) -> None:
        (self.bin / tool).unlink()

    def runner(self) -> CommandRunner:
        return CommandRunner(path=str(self.bin), env={"HOME": str(self.bin.parent)})

    @property
    def state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {}
        return json.loads(self.state_file.read_text())  # type: ignore[no-any-return]

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(value))

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def clear_calls(self) -> None:
        self.log.unlink(missing_ok=True)


def run_as_nobody(fn: Callable[[], str]) -> str:
    """Run ``fn`` in a forked child with uid/gid 65534 and return its result (or
    ``"<ExcType>: message"``). Tests run as root, for whom chmod denies nothing; a real
    unprivileged process is the honest way to get a permission error. Everything ``fn`` needs
    must be imported already: the interpreter's files may not be readable by nobody."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                out = fn()
            except Exception as exc:
                out = f"{type(exc).__name__}: {exc}"
            os.write(write_end, out.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@contextlib.contextmanager
def world_readable_dir() -> Iterator[Path]:
    """A fresh directory under /tmp that nobody can enter but not write (pytest's tmp_path
    sits under a 0700 directory); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="llmtap-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
