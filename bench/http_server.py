# The HTTP server `ferry bench http` is measured against: the test crates/cli/tests/bench_http.rs
# (its request log checks the probe's counts) and bench/http (ferry vs wrk) both start it.
# GET /blob → 4096 bytes; GET /work → 4096 bytes after ~0.3 ms of CPU; POST /echo → 201 when the
# X-Ferry header and body arrive, else 400; anything else → 404. Prints its port, then one line per
# request on stdout: METHOD PATH BODY-BYTES X-FERRY.
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOB = b"x" * 4096

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one segment, Nagle off: no 40 ms delayed-ACK stalls that would make
    # every client look alike.
    wbufsize = 65536
    disable_nagle_algorithm = True
    def log_message(self, *a):
        pass
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def note(self, n):
        sys.stdout.write(f"{self.command} {self.path} {n} {self.headers.get('X-Ferry', '-')}\n")
        sys.stdout.flush()
    def do_GET(self):
        self.note(0)
        if self.path == "/work":
            sum(range(30000))
        found = self.path in ("/blob", "/work")
        self.reply(200 if found else 404, BLOB if found else b"no")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.note(n)
        ok = self.path == "/echo" and body == b'{"probe":"ferry"}' and self.headers.get("X-Ferry") == "yes"
        self.reply(201 if ok else 400, body)

ThreadingHTTPServer.daemon_threads = True
# A load tool closing its connections at the end is not an error worth a traceback.
ThreadingHTTPServer.handle_error = lambda *a: None
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
