"""Oversized requests against a real ``consentry serve``: what they cost the server.

    python bench/upload_limits.py [--port 8160] [--megabytes 100]

Starts ``consentry serve`` (SQLite in a temporary directory), then: an unauthenticated
``Transfer-Encoding: chunked`` PUT of ``--megabytes`` MB (the answer, how much was sent before
the server answered, its peak RSS before and after, from /proc VmHWM), and a request whose
header grows to 40 MB while another connection times ``GET /healthz``. Prints JSON.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import emit

MB = 1024 * 1024
CATALOGUE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mini.yaml"


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) * 1024 if found else -1


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def chunked_upload(port: int, total: int) -> dict[str, Any]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        "PUT /v1/subjects/bench-1/permissions/ads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    )
    block = 64 * 1024
    piece = b"%x\r\n%s\r\n" % (block, b" " * block)
    sent, answer = 0, b""
    started = time.perf_counter()
    try:
        sock.sendall(head.encode())
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(piece)
            sent += block
        else:
            sock.sendall(b"1\r\n{\r\n1\r\n}\r\n0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    try:
        answer = sock.recv(65536)
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    return {
        "status": _status(answer),
        "sent_mb": round(sent / MB, 1),
        "seconds": round(time.perf_counter() - started, 2),
    }


def huge_header(port: int, total: int) -> dict[str, Any]:
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get("/healthz")
                latencies.append(time.perf_counter() - started)
                time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sent, answer = 0, b""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(b"a" * 64 * 1024)
            sent += 64 * 1024
        else:
            sock.sendall(b"\r\n\r\n")
        answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
        time.sleep(0.2)
        stop.set()
        prober.join()
    started = time.perf_counter()
    httpx.get(f"http://127.0.0.1:{port}/healthz")  # and once more after it
    latencies.append(time.perf_counter() - started)
    return {
        "status": _status(answer),
        "sent_mb": round(sent / MB, 1),
        "healthz_worst_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8160)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "CONSENTRY_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "CONSENTRY_CATALOGUE": str(CATALOGUE),
            "CONSENTRY_JWT_SECRET": secrets.token_urlsafe(48),
        }
        command = [sys.executable, "-m", "consentry", "serve", "--port", str(args.port)]
        command.append("--no-access-log")
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"http://127.0.0.1:{args.port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            before = _peak_rss(server.pid)
            upload = chunked_upload(args.port, args.megabytes * MB)
            time.sleep(0.5)
            upload["peak_rss_before_mb"] = round(before / MB, 1)
            upload["peak_rss_after_mb"] = round(_peak_rss(server.pid) / MB, 1)
            upload["peak_rss_growth_mb"] = round((_peak_rss(server.pid) - before) / MB, 1)
            header = huge_header(args.port, 40 * MB)
        finally:
            server.terminate()
            server.wait(timeout=30)
    emit("upload_limits", {"chunked_upload": upload, "header_40_mb": header})


if __name__ == "__main__":
    main()
