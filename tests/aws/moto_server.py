"""Runs the moto server (AWS Secrets Manager, SSM, STS, ...) on a free loopback port.

    python moto_server.py [--watch-pid PID]

Prints "ready http://127.0.0.1:PORT" once it answers, then serves until SIGTERM/SIGINT, or
until PID exits, so a test run that dies leaves no server behind.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time
import urllib.request

from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watch-pid", type=int, default=0)
    args = parser.parse_args()

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                print(f"moto did not answer on {url} within 30s", file=sys.stderr)
                return 1
            time.sleep(0.1)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"ready {url}", flush=True)
    while not stop.wait(0.5):
        if args.watch_pid and not alive(args.watch_pid):
            print(f"watched process {args.watch_pid} exited: shutting down", file=sys.stderr)
            break
    server.stop()
    return 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    sys.exit(main())
