"""Creates a bucket in fake-gcs-server or a container in Azurite, for scripts/test.sh and the
end-to-end tests: neither object_store nor the exporter creates buckets.

    emulators.py gcs-bucket http://127.0.0.1:PORT NAME
    emulators.py azurite-container http://127.0.0.1:PORT NAME

Exits 0 when the bucket or container exists afterwards (created now or before), 1 otherwise.
For the conformance suite's multipart test it also tells how an object was uploaded:

    emulators.py gcs-components http://127.0.0.1:PORT BUCKET OBJECT   (the parts composed by
        tests/py/gcs_xml_bridge.py's XML multipart upload; 1 for a single PUT)
    emulators.py azurite-blocks http://127.0.0.1:PORT CONTAINER BLOB   (its committed blocks: 0
        for a single Put Blob)

Azurite wants a signed request: the SharedKey scheme with the emulator's well-known account and
key, written out here with the standard library alone.
"""
import base64
import datetime
import hashlib
import hmac
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def gcs_bucket(url, name):
    body = json.dumps({"name": name}).encode()
    req = urllib.request.Request(
        f"{url}/storage/v1/b", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(req)
    except urllib.error.HTTPError as e:
        if e.code != 409:  # 409: it exists already
            raise


def azurite_container(url, name):
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
    # VERB, Content-Encoding, -Language, -Length (empty for 0 bytes), -MD5, Content-Type,
    # Date, If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
    content_type = "application/octet-stream"
    to_sign = "PUT\n\n\n\n\n" + content_type + "\n" + "\n" * 6 + canonical_headers + resource
    signature = base64.b64encode(
        hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{signature}"
    headers["Content-Type"] = content_type
    req = urllib.request.Request(
        f"{url}/{AZURITE_ACCOUNT}/{name}?restype=container", method="PUT", headers=headers, data=b""
    )
    try:
        urllib.request.urlopen(req)
    except urllib.error.HTTPError as e:
        if e.code != 409:  # 409: ContainerAlreadyExists
            print(e.read().decode(errors="replace"), file=sys.stderr)
            raise


def gcs_components(url, bucket, name):
    quoted = urllib.parse.quote(name, safe="")
    meta = json.load(urllib.request.urlopen(f"{url}/storage/v1/b/{bucket}/o/{quoted}"))
    print(meta.get("metadata", {}).get("bridge-component-count", "1"))


def azurite_blocks(url, container, name):
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
    path = f"/{AZURITE_ACCOUNT}/{container}/{name}"
    resource = f"/{AZURITE_ACCOUNT}{path}\nblocklisttype:committed\ncomp:blocklist"
    to_sign = "GET\n" + "\n" * 11 + canonical_headers + resource
    signature = base64.b64encode(
        hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{signature}"
    # Signed as sent: the path's characters (`=` of extract_date=) unescaped.
    quoted = urllib.parse.quote(path, safe="/=")
    req = urllib.request.Request(f"{url}{quoted}?comp=blocklist&blocklisttype=committed",
                                 headers=headers)
    try:
        body = urllib.request.urlopen(req).read().decode()
    except urllib.error.HTTPError as e:
        print(e.read().decode(errors="replace"), file=sys.stderr)
        raise
    print(body.count("<Block>"))


def main():
    what, url = sys.argv[1:3]
    {"gcs-bucket": gcs_bucket, "azurite-container": azurite_container,
     "gcs-components": gcs_components, "azurite-blocks": azurite_blocks}[what](
        url.rstrip("/"), *sys.argv[3:])


if __name__ == "__main__":
    main()
