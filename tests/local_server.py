"""A file server on 127.0.0.1 for the tests that download: started and stopped by each test."""

import functools
import http.server
import os
import threading


class CuttingHandler(http.server.SimpleHTTPRequestHandler):
  """Serves a folder; `/cut/NAME` announces NAME's whole length and sends half of it."""

  def do_GET(self):  # noqa: N802 (http.server's name)
    if self.path.startswith("/cut/"):
      data = open(os.path.join(self.directory, self.path[5:]), "rb").read()
      self.send_response(200)
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data[: len(data) // 2])
      self.wfile.flush()
      self.close_connection = True
      return
    super().do_GET()

  def log_message(self, *args):
    del args


class LocalServer:
  """Serves `folder` on 127.0.0.1 at a free port (`url`) from a thread until `stop()`."""

  def __init__(self, folder):
    self.httpd = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), functools.partial(CuttingHandler, directory=str(folder))
    )
    self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
    self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
    self.thread.start()

  def stop(self):
    self.httpd.shutdown()
    self.httpd.server_close()
