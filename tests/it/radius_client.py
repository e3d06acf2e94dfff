#!/usr/bin/python3
"""RADIUS requests built by pyrad (Debian python3-pyrad 2.1), for the cases radclient cannot send:
retransmissions of the very same packet, malformed packets of every length, a client at an address
the server does not know. pyrad 2.1 predates Message-Authenticator, so it is added here with
HMAC-MD5 as RFC 3579 section 3.2 says. Prints one JSON object: what came back.

usage: radius_client.py CASE PORT SECRET USER PASSWORD
CASE: retransmit | malformed | unknown-client
"""
import hashlib
import hmac
import io
import json
import socket
import sys

from pyrad.dictionary import Dictionary
from pyrad.packet import AccessRequest, AuthPacket

DICTIONARY = """ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE State 24 octets
ATTRIBUTE Session-Timeout 27 integer
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Message-Authenticator 80 octets
"""
MESSAGE_AUTHENTICATOR = 80


def signed_request(secret, user, password):
    """An Access-Request with a Message-Authenticator over the whole packet."""
    packet = AuthPacket(code=AccessRequest, secret=secret, dict=Dictionary(io.StringIO(DICTIONARY)))
    packet["User-Name"] = user
    packet["User-Password"] = packet.PwCrypt(password)
    packet["NAS-Identifier"] = "pyrad"
    packet["Message-Authenticator"] = b"\0" * 16
    raw = bytearray(packet.RequestPacket())
    at = 20
    while at < len(raw):
        kind, length = raw[at], raw[at + 1]
        if kind == MESSAGE_AUTHENTICATOR:
            raw[at + 2:at + 18] = hmac.new(secret, bytes(raw), hashlib.md5).digest()
        at += length
    return bytes(raw)


def ask(sock, port, data, timeout):
    """Sends `data`; the answer's octets, or None when nothing came within `timeout` seconds."""
    sock.sendto(data, ("127.0.0.1", port))
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(8192)[0]
    except socket.timeout:
        return None


def main():
    case, port, secret, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4], sys.argv[5]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if case == "retransmit":
        sock.bind(("127.0.0.1", 0))
        request = signed_request(secret, user, password)
        replies = [ask(sock, port, request, 8) for _ in range(3)]
        print(json.dumps({"replies": [r.hex() if r else None for r in replies]}))
    elif case == "malformed":
        sock.bind(("127.0.0.1", 0))
        valid = signed_request(secret, user, password)
        answered = 0
        sent = 0
        for length in range(0, 120):
            truncated = valid[:length] if length < len(valid) else valid[:-1]
            for data in (bytes([length % 256]) * length, truncated, valid[:4] + bytes(max(0, length - 4))):
                sent += 1
                if ask(sock, port, data, 0.05) is not None:
                    answered += 1
        lying = bytearray(valid)
        lying[2:4] = (len(valid) + 40).to_bytes(2, "big")
        sent += 1
        if ask(sock, port, bytes(lying), 0.2) is not None:
            answered += 1
        # Octets past the length field are padding (RFC 2865 section 3): this one is answered.
        padded = ask(sock, port, valid + bytes(5000), 8)
        print(json.dumps({"sent": sent, "answered": answered, "padded_answered": padded is not None}))
    elif case == "unknown-client":
        sock.bind(("127.0.0.2", 0))
        reply = ask(sock, port, signed_request(secret, user, password), 2)
        print(json.dumps({"answered": reply is not None}))
    else:
        sys.exit(f"unknown case {case}")


if __name__ == "__main__":
    main()
