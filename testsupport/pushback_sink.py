"""A loopback HTTP sink that pushes back, for the exporter reliability tests. Not a collector.

Usage: pushback_sink.py MODE COUNT
  MODE  429      answer the first COUNT requests `429 Too Many Requests` with `Retry-After: 2`
        endless  answer the first COUNT requests `503` with a body that never ends
        ok       answer every request `200`
Prints `listening PORT` once it listens, then one JSON line per request:
  {"at": <seconds since start>, "status": <status answered>, "body": <request body bytes>,
   "sent": <response body bytes written before the client went away>}
"""

import http.server
import json
import sys
import threading
import time

MODE = sys.argv[1]
COUNT = int(sys.argv[2])
START = time.monotonic()
LOCK = threading.Lock()
SEEN = [0]


def log(**fields):
    fields["at"] = round(time.monotonic() - START, 3)
    with LOCK:
        print(json.dumps(fields), flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with LOCK:
            SEEN[0] += 1
            n = SEEN[0]
        if n <= COUNT and MODE == "429":
            self.send_response(429)
            self.send_header("retry-after", "2")
            self.send_header("content-length", "0")
            self.end_headers()
            log(status=429, body=len(body), sent=0)
        elif n <= COUNT and MODE == "endless":
            self.send_response(503)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            sent = 0
            chunk = b"x" * 65536
            try:
                # No length and no end: only the client's giving up ends it.
                while sent < (256 << 20):
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            self.close_connection = True
            log(status=503, body=len(body), sent=sent)
        else:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            log(status=200, body=len(body), sent=0)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
