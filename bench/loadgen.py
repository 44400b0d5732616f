"""A small HTTP/1.1 load generator: keep-alive connections on loopback, one request in flight
per connection, latency of every request. Used for every HTTP peer alike.

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:8001/v1/decisions \\
        --bodies FILE --key KEY [--connections 32] [--seconds 15] [--warmup 3]

``FILE`` is a JSON list of request bodies, sent in order, round robin. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any
from urllib.parse import urlsplit


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    start: float,
    stop: float,
    laps: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while True:
            now = time.perf_counter()
            if now >= stop:
                return
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            status = int(head[9:12])
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done = time.perf_counter()
            if done >= start:  # past the warm-up
                laps.append(done - now)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


def _request(host: str, port: int, path: str, key: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


async def run(
    url: str,
    bodies: list[dict[str, Any]],
    key: str,
    connections: int,
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [_request(host, port, parts.path, key, b) for b in bodies]
    begin = time.perf_counter()
    start, stop = begin + warmup, begin + warmup + seconds
    laps: list[float] = []
    errors: list[int] = []
    step = max(len(requests) // connections, 1)
    await asyncio.gather(
        *(
            _connection(host, port, requests, n * step, start, stop, laps, errors)
            for n in range(connections)
        )
    )
    laps.sort()
    return {
        "connections": connections,
        "seconds": seconds,
        "requests": len(laps),
        "errors": len(errors),
        "throughput_rps": round(len(laps) / seconds, 1),
        "p50_ms": round(statistics.median(laps) * 1000, 3),
        "p99_ms": round(laps[int(len(laps) * 0.99)] * 1000, 3),
        "max_ms": round(laps[-1] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    args = parser.parse_args()
    with open(args.bodies) as f:
        bodies = json.load(f)
    work = run(args.url, bodies, args.key, args.connections, args.seconds, args.warmup)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(work)
    else:
        result = uvloop.run(work)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
