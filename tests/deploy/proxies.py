"""The reverse proxies of ``deploy/`` run for real on loopback: their configuration files,
rewritten only where a test must differ from production (host names, ports, certificate
and log paths, state kept in the test's tmp dir), and a raw HTTPS client that can talk
to them from a chosen source address with the right SNI."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import ROOT, free_port
from tests.waiting import TimedOut, wait_until

DEPLOY = ROOT / "deploy"
TRACKER_HOST = "t.example.test"
SITE_HOST = "www.example.test"


def require(tool: str, package: str) -> str:
    """The tool's path; skips the test when it is missing, unless CI=true: then fails."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found:
        return found
    message = f"{tool} is missing: `apt-get install -y {package}` (make test does it as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def rewrite(text: str, replacements: Mapping[str, str], *, source: str) -> str:
    """Each replacement must still find its text: a deploy file that changed under the
    test fails here instead of being tested in some other shape."""
    for old, new in replacements.items():
        assert old in text, f"{source} no longer contains {old!r}: update tests/deploy"
        text = text.replace(old, new)
    return text


def split_caddy_globals(text: str) -> tuple[str, str]:
    """(the global options block's body, the site blocks after it)."""
    lines = text.splitlines(keepends=True)
    start = lines.index("{\n")
    end = lines.index("}\n", start)
    return "".join(lines[start + 1 : end]), "".join(lines[end + 1 :])


def self_signed(directory: Path, *hosts: str) -> tuple[Path, Path]:
    """A throwaway certificate and key for ``hosts`` (the browser ignores HTTPS errors)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def https_request(
    port: int,
    host: str,
    path: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    source: str = "127.0.0.1",
    timeout: float = 5.0,
) -> Answer:
    """One HTTP/1.1 request over TLS to 127.0.0.1:``port`` with SNI and Host ``host``,
    from the loopback address ``source`` (any 127.x.y.z works on Linux)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    head += [f"Content-Length: {len(body)}"] if body or method == "POST" else []
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    raw = socket.create_connection(("127.0.0.1", port), timeout, source_address=(source, 0))
    with raw, context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        response = http.client.HTTPResponse(tls, method=method)  # type: ignore[arg-type]
        response.begin()
        return Answer(response.status, response.headers, response.read())


@dataclass
class Proxy:
    """A proxy process serving both layouts on one HTTPS port of 127.0.0.1."""

    name: str
    command: list[str]
    workdir: Path
    port: int
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 20.0) -> Proxy:
        """Start it and wait until the collector answers through it, in both layouts."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=log
            )
        probes = [(TRACKER_HOST, "/healthz"), (SITE_HOST, "/ashiato/healthz")]
        try:
            wait_until(lambda: self._answers(probes), what="both layouts", timeout=timeout)
        except TimedOut:
            raise AssertionError(f"{self.name} not ready:\n{self.logs()}") from None
        return self

    def _answers(self, probes: list[tuple[str, str]]) -> bool:
        """Probe each (host, path) in turn, dropping those that answer 200: all done?"""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited at start:\n{self.logs()}")
        while probes:
            try:
                if https_request(self.port, *probes[0], timeout=2).status != 200:
                    return False
            except OSError:
                return False
            probes.pop(0)
        return True

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def caddy(workdir: Path, *, port: int, collector: int, site_app: int) -> Proxy:
    """Caddy with the site blocks of both deploy Caddyfiles behind one set of global
    options (theirs, plus: no admin API, state in ``workdir``, its own local CA for the
    certificates, never installed into the system's trust store, free ports)."""
    sub_globals, sub_sites = split_caddy_globals((DEPLOY / "caddy/Caddyfile.subdomain").read_text())
    path_globals, path_sites = split_caddy_globals((DEPLOY / "caddy/Caddyfile.path").read_text())
    assert sub_globals == path_globals, "the two Caddyfiles' global options differ"
    test_globals = (
        "\tadmin off\n"
        f"\tstorage file_system {{\n\t\troot {workdir / 'caddy-state'}\n\t}}\n"
        "\tlocal_certs\n\tskip_install_trust\n"
        f"\thttp_port {free_port()}\n\thttps_port {port}\n"
    )
    ports = {"127.0.0.1:8000": f"127.0.0.1:{collector}"}
    subdomain = {"\nt.example.co.jp {": f"\n{TRACKER_HOST}:{port} {{"}
    path = {"\nwww.example.co.jp {": f"\n{SITE_HOST}:{port} {{",
            "127.0.0.1:3000": f"127.0.0.1:{site_app}"}  # fmt: skip
    sites = rewrite(sub_sites, ports | subdomain, source="Caddyfile.subdomain") + rewrite(
        path_sites, ports | path, source="Caddyfile.path"
    )
    config = workdir / "Caddyfile"
    config.write_text("{\n" + test_globals + sub_globals + "}\n" + sites)
    home = str(workdir / "caddy-home")
    env = dict(os.environ, HOME=home, XDG_DATA_HOME=home, XDG_CONFIG_HOME=home)
    command = [require("caddy", "caddy"), "run", "--adapter", "caddyfile", "--config", str(config)]
    return Proxy("caddy", command, workdir, port, env)


def nginx_layout(layout: str, *, cert: Path, key: Path, logs: Path) -> str:
    """deploy/nginx/ashiato-<layout>.conf with the test's certificate and log paths."""
    host = {"subdomain": "t.example.co.jp", "path": "www.example.co.jp"}[layout]
    return rewrite(
        (DEPLOY / f"nginx/ashiato-{layout}.conf").read_text(),
        {
            f"/etc/letsencrypt/live/{host}/fullchain.pem": str(cert),
            f"/etc/letsencrypt/live/{host}/privkey.pem": str(key),
            "/var/log/nginx/": f"{logs}/",
            "/var/www/letsencrypt": str(logs),
        },
        source=f"ashiato-{layout}.conf",
    )


def nginx_main(workdir: Path, includes: list[Path]) -> Path:
    """A main nginx.conf that keeps every file nginx writes in ``workdir``."""
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};" for kind in ("client_body", "proxy",
                                                             "fastcgi", "uwsgi", "scgi")
    )  # fmt: skip
    lines = "\n".join(f"    include {path};" for path in includes)
    config = workdir / "nginx.conf"
    config.write_text(
        f"daemon off;\nmaster_process off;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'nginx-error.log'};\nevents {{}}\n"
        f"http {{\n{temp}\n    access_log {workdir / 'access.log'};\n{lines}\n}}\n"
    )
    return config


def nginx_command(config: Path, *extra: str) -> list[str]:
    prefix = str(config.parent)
    return [require("nginx", "nginx"), "-p", prefix, "-e", f"{prefix}/nginx-error.log",
            "-c", str(config), *extra]  # fmt: skip


def nginx(workdir: Path, *, port: int, collector: int, site_app: int) -> Proxy:
    """nginx with the upstream file and both layouts' server blocks, listening on
    loopback ports, with a self-signed certificate for both host names."""
    cert, key = self_signed(workdir, TRACKER_HOST, SITE_HOST)
    http_port = free_port()
    listen = {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{port} ssl http2;",
        "listen [::]:443 ssl http2;\n": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;\n": "",
    }
    names = {
        "subdomain": ("t.example.co.jp", TRACKER_HOST),
        "path": ("www.example.co.jp", SITE_HOST),
    }
    includes = [workdir / "ashiato-upstream.conf"]
    includes[0].write_text(
        rewrite(
            (DEPLOY / "nginx/ashiato-upstream.conf").read_text(),
            {"server 127.0.0.1:8000": f"server 127.0.0.1:{collector}"},
            source="ashiato-upstream.conf",
        )
    )
    for layout, (production, test_host) in names.items():
        text = nginx_layout(layout, cert=cert, key=key, logs=workdir)
        extra = {"127.0.0.1:3000": f"127.0.0.1:{site_app}"} if layout == "path" else {}
        text = rewrite(
            text,
            listen | extra | {f"server_name {production};": f"server_name {test_host};"},
            source=layout,
        )
        includes.append(workdir / f"ashiato-{layout}.conf")
        includes[-1].write_text(text)
    return Proxy("nginx", nginx_command(nginx_main(workdir, includes)), workdir, port)
