"""Real network middlemen for the connection tests: an HTTP proxy, a TLS front, a private CA.

* :class:`ForwardProxy` — a small HTTP proxy on loopback, as an Enterprise network has one: it
  tunnels ``CONNECT host:port`` (how clients reach https:// through a proxy) and forwards
  absolute-form requests (``GET http://host/path``, how clients reach http:// through a proxy).
  It can require Basic ``Proxy-Authorization`` and records what it was asked.
* :class:`TLSFront` — TLS termination on loopback in front of a plain server, so that a real
  https:// endpoint with a certificate from a private CA stands before the local stream server.
* :func:`make_ca` — a private CA and a server certificate for 127.0.0.1, made with
  ``cryptography``, written as PEM files.
* :class:`ThreadedProxy` — a :class:`ForwardProxy` on its own event loop in a thread, for tests
  whose client is another process.

All of them move real bytes over real sockets; none stands in for the code under test.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import ssl
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# ---- a private CA ------------------------------------------------------------------------------


@attrs.frozen
class CertificateFiles:
    """PEM files of a private CA and of a server certificate it signed (for 127.0.0.1)."""

    ca_file: Path
    server_cert_file: Path
    server_key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context presenting the server certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        return context


def make_ca(directory: Path, name: str = "Test Private CA") -> CertificateFiles:
    """Create a CA and a server certificate for ``127.0.0.1``/``localhost`` in ``directory``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(
        ca_file=directory / "ca.pem",
        server_cert_file=directory / "server.pem",
        server_key_file=directory / "server-key.pem",
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.server_key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# ---- piping ------------------------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))


class _Relay:
    """Shared lifecycle: a listening asyncio server whose connection tasks are tracked."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def _listen(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=ssl_context)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _open(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(host, port)
        self._writers.add(writer)
        return reader, writer

    async def close(self) -> None:
        """Stop listening and end every connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


# ---- the proxy ---------------------------------------------------------------------------------


@attrs.define
class ProxiedRequest:
    """What the proxy was asked: the method, the target, and the Proxy-Authorization sent."""

    method: str
    target: str
    proxy_authorization: str | None


class ForwardProxy(_Relay):
    """An HTTP proxy on loopback: CONNECT tunnels and absolute-form forwarding.

    :param credentials: ``(user, password)`` to require as Basic ``Proxy-Authorization``; a
        request without them (or with others) gets ``407 Proxy Authentication Required``.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.credentials = credentials
        self.requests: list[ProxiedRequest] = []
        self.refused = 0

    @property
    def url(self) -> str:
        """The proxy's URL (no credentials)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Start listening on a free port; returns :attr:`url`."""
        await self._listen()
        return self.url

    async def __aenter__(self) -> ForwardProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        user, password = self.credentials
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return header == expected

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [line for line in lines[1:] if line]
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in headers)
        }
        authorization = fields.get("proxy-authorization")
        self.requests.append(ProxiedRequest(method, target, authorization))
        if not self._authorized(authorization):
            self.refused += 1
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n'
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = await self._open(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _splice((reader, writer), upstream)
            return
        parts = urlsplit(target)
        upstream = await self._open(parts.hostname or "", parts.port or 80)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        kept = [
            line
            for line in headers
            if not line.lower().startswith(("proxy-authorization:", "proxy-connection:"))
        ]
        upstream[1].write(
            (f"{method} {path} {version}\r\n" + "".join(f"{h}\r\n" for h in kept) + "\r\n").encode(
                "latin-1"
            )
        )
        await upstream[1].drain()
        await _splice((reader, writer), upstream)


class TLSFront(_Relay):
    """TLS termination on 127.0.0.1 in front of a plain server at ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int, certificates: CertificateFiles) -> None:
        super().__init__()
        self.target_port = target_port
        self.certificates = certificates

    @property
    def uri(self) -> str:
        """The https:// base URI."""
        return f"https://127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Start listening on a free port; returns :attr:`uri`."""
        await self._listen(self.certificates.server_context())
        return self.uri

    async def __aenter__(self) -> TLSFront:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._open("127.0.0.1", self.target_port)
        await _splice((reader, writer), upstream)


class ThreadedProxy:
    """A :class:`ForwardProxy` running on its own event loop in a daemon thread."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.proxy = ForwardProxy(credentials)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> str:
        """Start the thread and the proxy; returns the proxy's URL."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)
        return self.proxy.url

    def requests(self) -> list[ProxiedRequest]:
        """A copy of what the proxy was asked so far."""

        async def copy() -> list[ProxiedRequest]:
            return list(self.proxy.requests)

        return asyncio.run_coroutine_threadsafe(copy(), self._loop).result(10)

    def stop(self) -> None:
        """Close the proxy and end the thread."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.proxy.close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()
