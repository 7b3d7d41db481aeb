#!/usr/bin/python3
"""tests/s3-fault-proxy.py: a fault-injecting HTTP/1.1 proxy for the S3 tests.

    s3-fault-proxy.py --upstream 127.0.0.1:PORT --port-file FILE --stats FILE
                      [--rate R] [--seed N] [--kinds K,K...] [--delay SECONDS]
                      [--log FILE]

Listens on 127.0.0.1 on a port the kernel picks (written to --port-file once
listening) and relays each request to the upstream S3 server byte for byte:
the request line, the headers (Host included) and the body are not rewritten,
so a SigV4 signature made for the proxy's address stays valid. RGW checks a
signature against the Host header it receives, whatever its own port.

Each request draws, from a random generator seeded with --seed, whether it
gets a fault (probability --rate) and which one (uniformly among --kinds):

  reset_before  the connection is reset once the request's headers are read;
                the request never reaches the server
  reset_after   the request is served, the response thrown away, and the
                connection reset (a PUT took effect but the client cannot know)
  reset_mid     the connection is reset half-way through the response
  slowdown      503 SlowDown with an S3 XML error body; not forwarded
  delay         the request waits --delay seconds before being forwarded
  truncate      the response is cut half-way (its Content-Length kept) and
                the connection closed cleanly

Counters (requests, passed, one per fault kind) are written to --stats as
"name value" lines on SIGTERM, SIGINT and at exit. Standard library only; one
thread per client connection, each with its own upstream connection.
Authorization headers are never logged.
"""

import argparse
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time

KINDS = ("reset_before", "reset_after", "reset_mid", "slowdown", "delay", "truncate")
MAX_HEAD = 64 * 1024
SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                 b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                 b"<RequestId>dd-fault-proxy</RequestId></Error>")


class Closed(Exception):
    """The peer closed the connection (or sent something we cannot relay)."""


class Reader:
    """Buffered reads from a socket: lines, exact lengths, the rest."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(256 * 1024)
        if not data:
            raise Closed("connection closed")
        self.buf += data

    def head(self):
        """The header block up to and including the blank line."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                h, self.buf = self.buf[:i + 4], self.buf[i + 4:]
                return h
            if len(self.buf) > MAX_HEAD:
                raise Closed("header block too long")
            self.fill()

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return ln
            if len(self.buf) > MAX_HEAD:
                raise Closed("line too long")
            self.fill()

    def chunks(self, n):
        """Yield exactly n bytes in pieces as they arrive."""
        while n > 0:
            if not self.buf:
                self.fill()
            piece, self.buf = self.buf[:n], self.buf[n:]
            n -= len(piece)
            yield piece

    def until_close(self):
        if self.buf:
            piece, self.buf = self.buf, b""
            yield piece
        while True:
            data = self.sock.recv(256 * 1024)
            if not data:
                return
            yield data


def parse_head(head):
    """(first line words, {lower-case name: value}) of a header block."""
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    headers = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return first, headers


def body_pieces(reader, headers, is_response, method="", status=0):
    """The raw bytes of a message body, framing included, as they arrive."""
    if is_response and (method == "HEAD" or status in (204, 304) or 100 <= status < 200):
        return
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            ln = reader.line()
            yield ln
            size = int(ln.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    t = reader.line()
                    yield t
                    if t == b"\r\n":
                        return
            yield from reader.chunks(size + 2)
    elif "content-length" in headers:
        yield from reader.chunks(int(headers["content-length"]))
    elif is_response:
        yield from reader.until_close()


def reset(sock):
    """Close with RST rather than FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def stale(up):
    """The server closed an idle kept-alive connection (or sent unasked bytes)."""
    if up.buf:
        return True
    r, _, _ = select.select([up.sock], [], [], 0)
    return bool(r)


def finish(sock):
    """Close cleanly: a close with unread input would send RST instead of FIN,
    and the client could lose the response (a 503 or a 403 answered before a
    body it may still be sending). Already reset sockets are left alone."""
    if sock.fileno() < 0:
        return
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(2)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()


class Proxy:
    def __init__(self, args):
        self.args = args
        self.kinds = [k for k in args.kinds.split(",") if k]
        for k in self.kinds:
            if k not in KINDS:
                sys.exit("s3-fault-proxy: unknown fault kind %r (one of %s)" % (k, ", ".join(KINDS)))
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "passed": 0, "errors": 0}
        for k in KINDS:
            self.stats[k] = 0
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        host, port = args.upstream.rsplit(":", 1)
        self.upstream = (host, int(port))

    def count(self, name):
        with self.lock:
            self.stats[name] += 1

    def draw(self):
        with self.lock:
            self.stats["requests"] += 1
            if self.kinds and self.rng.random() < self.args.rate:
                return self.rng.choice(self.kinds)
        return None

    def log(self, msg):
        if self.logf:
            with self.lock:
                self.logf.write("%.3f %s\n" % (time.time(), msg))

    def write_stats(self):
        tmp = self.args.stats + ".tmp"
        with self.lock:
            with open(tmp, "w") as f:
                for k, v in self.stats.items():
                    f.write("%s %d\n" % (k, v))
            os.replace(tmp, self.args.stats)

    def serve(self, client):
        up = None
        creader = Reader(client)
        try:
            while True:
                try:
                    head = creader.head()
                except Closed:
                    return
                up = self.one(client, creader, head, up)
                if up is None:
                    return
        except (Closed, OSError, ValueError) as e:
            self.count("errors")
            self.log("error: %s" % e)
        finally:
            if up:
                up.sock.close()
            finish(client)

    def connect(self):
        s = socket.create_connection(self.upstream, timeout=120)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Reader(s)

    def one(self, client, creader, head, up):
        """Relay one request; return the upstream reader to keep, or None to close."""
        (method, target, *_), headers = parse_head(head)
        fault = self.draw()
        self.log("%s %s%s" % (method, target.split("?")[0], " fault=" + fault if fault else ""))
        expect = headers.get("expect", "").lower() == "100-continue"
        if fault == "reset_before":
            self.count(fault)
            reset(client)
            return None
        if fault == "slowdown":
            self.count(fault)
            if not expect:  # read the body so the connection stays usable
                for _ in body_pieces(creader, headers, False):
                    pass
            client.sendall(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                           b"Content-Length: %d\r\n%s\r\n" % (len(SLOWDOWN_BODY),
                                                           b"Connection: close\r\n" if expect else b"")
                           + SLOWDOWN_BODY)
            return up if not expect else None
        if fault == "delay":
            self.count(fault)
            time.sleep(self.args.delay)
        if up is None or stale(up):
            if up is not None:
                up.sock.close()
            up = self.connect()
        up.sock.sendall(head)
        body_sent = True
        if expect:
            # The server answers 100 Continue (relayed, then the body) or a
            # final status (the body is never sent; the connection is closed).
            rhead = up.head()
            (_, status, *_), _ = parse_head(rhead)
            if status == "100":
                client.sendall(rhead)
            else:
                body_sent = False
                return self.respond(client, up, method, rhead, fault, keep=False)
        if body_sent:
            for piece in body_pieces(creader, headers, False):
                up.sock.sendall(piece)
        rhead = up.head()
        return self.respond(client, up, method, rhead, fault, keep=True)

    def respond(self, client, up, method, rhead, fault, keep):
        (_, status, *_), rheaders = parse_head(rhead)
        status = int(status)
        if fault == "reset_after":
            for _ in body_pieces(up, rheaders, True, method, status):
                pass
            self.count(fault)
            reset(client)
            return None
        if fault in ("reset_mid", "truncate"):
            raw = rhead + b"".join(body_pieces(up, rheaders, True, method, status))
            # Cut inside the body when there is one, else inside the headers.
            cut = len(rhead) + (len(raw) - len(rhead)) // 2 if len(raw) > len(rhead) + 1 else len(rhead) // 2
            client.sendall(raw[:cut])
            self.count(fault)
            if fault == "reset_mid":
                reset(client)
            return None  # truncate: a clean close (finish)
        client.sendall(rhead)
        for piece in body_pieces(up, rheaders, True, method, status):
            client.sendall(piece)
        if fault is None:
            self.count("passed")
        conn = rheaders.get("connection", "").lower()
        if not keep or conn == "close" or ("content-length" not in rheaders
                                            and "chunked" not in rheaders.get("transfer-encoding", "")
                                            and method != "HEAD" and status not in (204, 304)):
            return None
        return up


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server")
    p.add_argument("--port-file", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--delay", type=float, default=0.5)
    p.add_argument("--log")
    args = p.parse_args()
    proxy = Proxy(args)

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    # Do not outlive the shell that started us (a test killed with SIGKILL).
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, daemon=True).start()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.replace(tmp, args.port_file)
    try:
        while True:
            client, _ = srv.accept()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=proxy.serve, args=(client,), daemon=True).start()
    finally:
        proxy.write_stats()


if __name__ == "__main__":
    main()
