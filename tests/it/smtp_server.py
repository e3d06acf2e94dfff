"""A real SMTP server for the end-to-end tests (Debian's python3-aiosmtpd): STARTTLS required before
anything else, AUTH PLAIN/LOGIN required and accepted only over TLS, each message written to its own
file in a maildir-like folder (`new/<n>.eml`). Prints "ready <port>" once it accepts connections and
runs until its standard input closes (the test process holds the other end)."""

import argparse
import pathlib
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Maildir:
    def __init__(self, folder):
        self.folder = pathlib.Path(folder) / "new"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = self.folder / f"{self.count:06}.eml"
        partial = name.with_suffix(".tmp")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(name)
        return f"250 2.0.0 Ok: queued as E2E{self.count:06}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    args = parser.parse_args()
    password = pathlib.Path(args.password_file).read_text().strip().encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == args.user.encode() and auth_data.password == password
        return AuthResult(success=ok)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    controller = Controller(
        Maildir(args.maildir),
        hostname="127.0.0.1",
        port=args.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    print(f"ready {args.port}", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
