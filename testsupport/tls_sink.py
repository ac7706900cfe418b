"""A loopback HTTPS sink for the exporter TLS tests: it stores what it is sent. Not a collector.

Usage: tls_sink.py CERT KEY [CLIENT_CA]
  CERT, KEY   the server's certificate chain and key (PEM)
  CLIENT_CA   when given, a client certificate signed by this CA is required (mutual TLS)
Prints `listening PORT` once it listens, then one JSON line per request:
  {"path": ..., "gzip": bool, "client": <client certificate subject or null>, "body": <base64>}
and one line {"tls_error": ...} per handshake it refused.
"""

import base64
import http.server
import json
import socketserver
import ssl
import sys
import threading

LOCK = threading.Lock()


def out(**fields):
    with LOCK:
        print(json.dumps(fields), flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        peer = self.connection.getpeercert()
        subject = None
        if peer:
            subject = ",".join("=".join(x) for rdn in peer.get("subject", ()) for x in rdn)
        out(
            path=self.path,
            gzip=self.headers.get("content-encoding") == "gzip",
            client=subject,
            body=base64.b64encode(body).decode(),
        )
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        out(tls_error=str(sys.exc_info()[1]))


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    if len(sys.argv) > 3:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(sys.argv[3])
    srv = Server(("127.0.0.1", 0), Handler)
    # The handshake happens in the handler's thread, so a refused one is reported, not fatal.
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    orig = Handler.setup

    def setup(self):
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as e:
            out(tls_error=str(e))
            raise
        orig(self)

    Handler.setup = setup
    print(f"listening {srv.server_address[1]}", flush=True)
    srv.serve_forever()


main()
