#!/usr/bin/env python3
"""Serves the explorer's bundle (web/dist) on loopback: the right MIME types for .wasm and .js
whatever the system's mime tables say, the precompressed `X.gz` beside a file when the browser
accepts gzip (web/build.sh writes optiscope_app_bg.wasm.gz), and no caching, so a rebuilt bundle
is what the next reload gets.

    python3 scripts/serve.py [--port 8080] [--dir web/dist]
"""
import argparse
import functools
import http.server
import os

TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".html": "text/html; charset=utf-8"}


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def send_head(self):
        path = self.translate_path(self.path)
        gz = path + ".gz"
        if "gzip" in self.headers.get("Accept-Encoding", "") and os.path.isfile(gz):
            try:
                f = open(gz, "rb")
            except OSError:
                return super().send_head()
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
            self.end_headers()
            return f
        return super().send_head()

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    p.add_argument("--dir", default="web/dist")
    a = p.parse_args()
    handler = functools.partial(Handler, directory=a.dir)
    with http.server.ThreadingHTTPServer(("127.0.0.1", a.port), handler) as httpd:
        print(f"serving the optiscope explorer on http://127.0.0.1:{a.port} (Ctrl-C to stop)", flush=True)
        httpd.serve_forever()


if __name__ == "__main__":
    main()
