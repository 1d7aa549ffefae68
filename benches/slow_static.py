#!/usr/bin/env python3
"""A static file server the project did not write, for the WAN benchmark.

Python's own http.server (SimpleHTTPRequestHandler on a ThreadingHTTPServer)
serves one log folder, as an independent check on helio's fixture server:

- every request waits --delay-ms before it is answered (a host across the
  internet; one round trip per request on a kept-alive connection);
- HTTP/1.1 with keep-alive (protocol_version "HTTP/1.1"; the handler always
  sends Content-Length, so connections stay open between requests);
- data tiles stored gzipped on disk are sent as they are, with
  `Content-Encoding: gzip`, as Sunlight's objects are served from S3;
- it counts how many requests it is answering at once and answers
  `GET /__harness/stats` (not itself counted) with JSON: requests,
  connections, the peak in flight, and the time requests spent being
  answered, summed (request-seconds: the integral of the number in flight
  over time, so divided by a wall time it is the time-weighted average in
  flight over that time); `GET /__harness/paths` lists the paths asked for.

Two things http.server does by default that no server in front of a real
log does, and that this harness therefore undoes (say `--as-shipped` to
keep them, to see what they cost):

- Nagle's algorithm stays on: the handler writes a response's headers and
  its body in two sends, and the kernel holds the body until the client
  acknowledges the headers, which Linux's delayed ACK puts off by up to
  40 ms. Go's net/http (Sunlight) and nginx set TCP_NODELAY.
- It listens with a backlog of 5 (socketserver's request_queue_size): a
  client opening eight connections at once has the rest of its first
  requests dropped and resent after the retransmission timeout (200 ms or
  more). Real servers listen with hundreds (nginx 511, Go the system's).

Usage:
  slow_static.py serve ROOT [--delay-ms N] [--port P] [--as-shipped] [--trace FILE]
      prints `listening on PORT` once ready.
  slow_static.py replay [--concurrency C] PATHS.json
      a trivial client: PATHS.json maps each server's base URL to the paths
      to GET from it; every server at once, C kept-alive connections each,
      bodies read and dropped. Prints {"wall": seconds} as JSON: what the
      harness allows a client that does no work of its own.

Standard library only.
"""

import argparse
import http.client
import http.server
import json
import os
import queue
import sys
import threading
import time
import urllib.parse

STATS_PATH = "/__harness/stats"
PATHS_PATH = "/__harness/paths"


class Stats:
    """Requests in flight: how many, the most at once, their summed time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0
        self.in_flight = 0
        self.peak = 0
        self.request_seconds = 0.0
        self.paths = []

    def connected(self):
        with self.lock:
            self.connections += 1

    def enter(self, path):
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.paths.append(path)
        return time.monotonic()

    def leave(self, started):
        elapsed = time.monotonic() - started
        with self.lock:
            self.in_flight -= 1
            self.request_seconds += elapsed

    def snapshot(self):
        with self.lock:
            return {
                "requests": self.requests,
                "connections": self.connections,
                "peak_in_flight": self.peak,
                "request_seconds": self.request_seconds,
            }


def handler_class(root, delay, stats, trace):
    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=root, **kwargs)

        def setup(self):
            stats.connected()
            super().setup()

        def log_message(self, format, *args):
            pass

        def do_GET(self):
            if self.path in (STATS_PATH, PATHS_PATH):
                with stats.lock:
                    answer = stats.paths[:] if self.path == PATHS_PATH else None
                body = json.dumps(answer if answer is not None else stats.snapshot()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            started = stats.enter(self.path)
            try:
                time.sleep(delay)
                super().do_GET()
            finally:
                stats.leave(started)
                if trace is not None:
                    trace.write(f"{started:.6f} {time.monotonic():.6f} {self.path}\n")

        def send_head(self):
            self._gzip = False
            if self.path.startswith("/tile/data/"):
                try:
                    with open(self.translate_path(self.path), "rb") as f:
                        self._gzip = f.read(2) == b"\x1f\x8b"
                except OSError:
                    pass
            return super().send_head()

        def end_headers(self):
            # Gzip data tiles go out as they are stored, labelled as such.
            if getattr(self, "_gzip", False):
                self.send_header("Content-Encoding", "gzip")
            super().end_headers()

        def guess_type(self, path):
            return "application/octet-stream" if "/tile/" in path else "text/plain; charset=utf-8"

    return Handler


def serve(args):
    stats = Stats()
    trace = open(args.trace, "a", buffering=1) if args.trace else None
    handler = handler_class(os.path.abspath(args.root), args.delay_ms / 1000.0, stats, trace)
    server_class = http.server.ThreadingHTTPServer
    if not args.as_shipped:
        handler.disable_nagle_algorithm = True

        class Listening(http.server.ThreadingHTTPServer):
            request_queue_size = 128

        server_class = Listening
    server = server_class(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    return 0


def replay(args):
    with open(args.paths) as f:
        plan = json.load(f)

    def host(base, paths):
        url = urllib.parse.urlsplit(base)
        prefix = url.path.rstrip("/")
        jobs = queue.Queue()
        for path in paths:
            jobs.put(path)

        def worker():
            connection = http.client.HTTPConnection(url.hostname, url.port)
            while True:
                try:
                    path = jobs.get_nowait()
                except queue.Empty:
                    return
                connection.request("GET", prefix + path)
                connection.getresponse().read()

        workers = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    started = time.monotonic()
    hosts = [threading.Thread(target=host, args=item) for item in plan.items()]
    for h in hosts:
        h.start()
    for h in hosts:
        h.join()
    print(json.dumps({"wall": time.monotonic() - started}), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    serving = modes.add_parser("serve")
    serving.add_argument("root")
    serving.add_argument("--delay-ms", type=float, default=50.0)
    serving.add_argument("--port", type=int, default=0)
    serving.add_argument("--as-shipped", action="store_true")
    serving.add_argument("--trace", metavar="FILE", help="append `start end path` (monotonic seconds) per request")
    replaying = modes.add_parser("replay")
    replaying.add_argument("--concurrency", type=int, default=8)
    replaying.add_argument("paths")
    args = parser.parse_args()
    return serve(args) if args.mode == "serve" else replay(args)


if __name__ == "__main__":
    sys.exit(main())
