"""The mitmproxy addons llmtap runs on, and only those.

``mitmproxy/addons/__init__.py`` imports every default addon at once (the onboarding app
with flask and werkzeug, proxy auth with ldap3, the flow-filter language with pyparsing, and
two dozen more), and any import of one addon module, including ``mitmproxy.master``'s own
``termlog``, runs it first. llmtap needs none of them, and they were about a third of the
start-up time. :func:`prepare` registers the ``mitmproxy.addons`` package without running
that ``__init__`` (its submodules import as usual), and :func:`addons` lists what llmtap
needs: the proxy core, the listeners, protocol detection, TLS (leaf certificates from our
CA), and the small protocol hygiene addons.

``prepare`` must run before anything imports ``mitmproxy.master``; when something already
imported the package (tests that use ``mitmproxy.test.taddons``, a plugin), it does nothing
and the same addons load from the full package.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

_PACKAGE = "mitmproxy.addons"


def prepare() -> None:
    if _PACKAGE in sys.modules:
        return
    import mitmproxy

    spec = importlib.machinery.ModuleSpec(_PACKAGE, None, is_package=True)
    package = importlib.util.module_from_spec(spec)
    package.__path__ = [str(Path(mitmproxy.__file__).parent / "addons")]
    sys.modules[_PACKAGE] = package
    mitmproxy.addons = package  # type: ignore[attr-defined]  # what the import would bind


def addons() -> list[Any]:
    """Fresh instances, in mitmproxy's default order."""
    prepare()
    from mitmproxy.addons.block import Block
    from mitmproxy.addons.core import Core
    from mitmproxy.addons.disable_h2c import DisableH2C
    from mitmproxy.addons.dns_resolver import DnsResolver
    from mitmproxy.addons.next_layer import NextLayer
    from mitmproxy.addons.proxyserver import Proxyserver
    from mitmproxy.addons.strip_dns_https_records import StripDnsHttpsRecords
    from mitmproxy.addons.tlsconfig import TlsConfig
    from mitmproxy.addons.update_alt_svc import UpdateAltSvc
    from mitmproxy.addons.upstream_auth import UpstreamAuth

    class OnceTlsConfig(TlsConfig):
        """mitmproxy's TlsConfig loads the CA again in ``running()`` (a FIXME for a
        ``configure`` that might not have seen ``confdir``); llmtap always sets confdir, so
        the CA loaded by that ``configure`` is kept (one RSA key parse less at start)."""

        name = "tlsconfig"  # what mitmproxy and llmtap look it up by

        def running(self) -> None:
            if getattr(self, "certstore", None) is None:
                super().running()

    return [
        Core(),
        Block(),
        StripDnsHttpsRecords(),
        DisableH2C(),
        Proxyserver(),
        DnsResolver(),
        NextLayer(),
        OnceTlsConfig(),
        UpstreamAuth(),
        UpdateAltSvc(),
    ]
