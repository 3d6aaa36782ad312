"""Runs inside the install's sandbox, before its command: pip speaks TCP to a proxy, the sandbox has
only loopback, and the parent's proxy (egress.py) listens on a Unix socket bound in.

`python -I tunnel.py SOCKET COMMAND...` listens on a free port of 127.0.0.1, relays each
connection there to SOCKET, and runs COMMAND with the proxy variables pointing at it; it exits
with COMMAND's status. Standard library only: it runs on the service's interpreter in isolated
mode, never on the project's packages.
"""
import os
import selectors
import socket
import subprocess
import sys
import threading

CHUNK = 1 << 16
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "PIP_PROXY")


def main(argv):
    path, command = argv[1], argv[2:]
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=serve, args=(listener, path), daemon=True).start()
    url = "http://127.0.0.1:%d" % listener.getsockname()[1]
    env = {**os.environ, **dict.fromkeys(PROXY_VARIABLES, url), "NO_PROXY": "", "no_proxy": ""}
    code = subprocess.call(command, env=env)
    return 128 - code if code < 0 else code  # killed by signal N: 128+N, as a shell says it


def serve(listener, path):
    while True:
        client, _ = listener.accept()
        threading.Thread(target=relay, args=(client, path), daemon=True).start()


def relay(client, path):
    with client, socket.socket(socket.AF_UNIX) as upstream:
        try:
            upstream.connect(path)
        except OSError:
            return
        pump(client, upstream)


def pump(one, other):
    """Copy both ways until either side closes (dbrelay.py's relay too)."""
    with selectors.DefaultSelector() as selector:
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        while True:
            for key, _ in selector.select():
                try:
                    data = key.fileobj.recv(CHUNK)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return


if __name__ == "__main__":
    sys.exit(main(sys.argv))
