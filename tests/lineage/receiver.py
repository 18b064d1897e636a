"""A test double of an OpenLineage backend (the role Marquez plays): accepts POST
/api/v1/lineage on a loopback port and appends each body, as one JSON line, to a file.
Answers 201 like Marquez; anything else is 404.

    python receiver.py PORT EVENTS_FILE
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/api/v1/lineage":
            self.send_response(404)
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        event = json.loads(body)
        with open(self.server.events, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def main(port: int, events: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.events = events
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
