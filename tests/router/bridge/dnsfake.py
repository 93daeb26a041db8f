"""A loopback DNS server for tests (UDP on 127.0.0.1, an ephemeral port, its own thread):
answers A/AAAA for the names it is given, NXDOMAIN for the rest, and counts queries."""

from __future__ import annotations

import socketserver
import threading
from collections import Counter
from types import TracebackType

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class FakeDns:
    def __init__(self, records: dict[str, list[str]], ttl: int = 60) -> None:
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}
        self.ttl = ttl
        self.queries: Counter[tuple[str, str]] = Counter()
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                try:
                    query = dns.message.from_wire(data)
                except Exception:
                    return
                sock.sendto(fake.answer(query).to_wire(), self.client_address)

        self.server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def spec(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries[(name, rdtype)] += 1
        addresses = self.records.get(name)
        if addresses is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        wanted = [a for a in addresses if (":" in a) == (rdtype == "AAAA")]
        if rdtype in ("A", "AAAA") and wanted:
            response.answer.append(
                dns.rrset.from_text_list(question.name, self.ttl, "IN", rdtype, wanted)
            )
        return response

    def __enter__(self) -> FakeDns:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
