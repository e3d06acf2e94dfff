#!/usr/bin/python3
"""Writes PSKC (RFC 6030) files for the import tests with an independent implementation: Debian's
python3-pskc (Arthur de Jong's library, on python3-cryptography).

Reads a JSON list of files from standard input, each
  {"path": ..., "protection": "plain" | "password" | "key", "password": ..., "key_hex": ...,
   "algorithm": "aes128-cbc" | "aes256-cbc", "mac": "hmac-sha1" | "hmac-sha256", "prf": ...,
   "encrypt_counter": bool, "keys": [{"serial", "id", "kind": "hotp" | "totp", "secret_hex",
   "digits", "counter", "period", "suite"}]}
and writes each file.
"""
import json
import sys

import pskc

ALGORITHMS = {
    "hotp": "urn:ietf:params:xml:ns:keyprov:pskc:hotp",
    "totp": "urn:ietf:params:xml:ns:keyprov:pskc:totp",
}

for spec in json.load(sys.stdin):
    container = pskc.PSKC()
    for key in spec["keys"]:
        fields = dict(
            id=key["id"],
            algorithm=ALGORITHMS.get(key["kind"], key["kind"]),
            secret=bytes.fromhex(key["secret_hex"]),
            response_length=key.get("digits", 6),
            response_encoding="DECIMAL",
            manufacturer="Example Tokens",
        )
        if key.get("serial"):
            fields["serial"] = key["serial"]
        if key["kind"] == "hotp":
            fields["counter"] = key.get("counter", 0)
        else:
            fields["time_interval"] = key.get("period", 30)
        if key.get("suite"):
            fields["algorithm_suite"] = key["suite"]
        container.add_key(**fields)
    options = {"algorithm": spec.get("algorithm", "aes128-cbc")}
    if spec.get("encrypt_counter"):
        options["fields"] = ["secret", "counter"]
    if spec["protection"] == "password":
        container.encryption.setup_pbkdf2(
            spec["password"], iterations=spec.get("iterations", 1000),
            prf=spec.get("prf"), **options)
    elif spec["protection"] == "key":
        container.encryption.setup_preshared_key(
            key=bytes.fromhex(spec["key_hex"]), key_name="Pre-shared key", **options)
    if spec["protection"] != "plain" and spec.get("mac"):
        container.mac.setup(algorithm=spec["mac"])
    container.write(spec["path"])
