#!/usr/bin/env python3
"""A Bester message handler in plain Python (standard library only).

Written the way the original besterd test handlers were: listen on a UNIX
socket, and for every connection read ONE frame, write ONE answer, close.
No envelope: the request is the client's bare payload.data.

Request data:  {"to": ["bob"], "text": "hello"}
Delivers:      {"reversed": "olleh"} to every user in "to".

Usage: handler.py SOCKET_PATH [INFORMER_PATH]
"""
import json
import os
import signal
import socket
import stat
import sys


def recv_exact(conn, n):
    # recv may return fewer bytes than asked; a frame can arrive in pieces.
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed in the middle of a frame")
        buf += chunk
    return buf


def read_frame(conn):
    size = int.from_bytes(recv_exact(conn, 4), "little")
    return json.loads(recv_exact(conn, size).decode("utf-8"))


def write_frame(conn, value):
    body = json.dumps(value).encode("utf-8")
    conn.sendall(len(body).to_bytes(4, "little") + body)


def answer(data):
    if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not isinstance(data.get("to"), list):
        return {
            "header": {
                "status": "1",
                "error": {"code": "bad_request", "message": 'expected {"to": [usernames], "text": "..."}'},
            },
            "data": None,
        }
    return {
        "header": {"status": "0", "command": {"type": "sendClients", "data": data["to"]}},
        "data": {"reversed": data["text"][::-1]},
    }


def claim(path):
    # Replace a socket file left by a crash, but never a live handler's socket or another file.
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        sys.exit(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        sys.exit(f"{path} is in use by another process")
    except ConnectionRefusedError:
        os.unlink(path)
    finally:
        probe.close()


def stop(signum, frame):
    raise SystemExit(0)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BESTER_HANDLER_SOCKET", "")
    if not path:
        sys.exit("usage: handler.py SOCKET_PATH [INFORMER_PATH]")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    claim(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Only the gateway's user may connect, whatever the umask: anyone else
    # could send requests. bind() creates the file; the umask decides its mode.
    previous = os.umask(0o177)
    try:
        server.bind(path)
    finally:
        os.umask(previous)
    server.listen()
    print(f"python-reverse: listening on {path}", file=sys.stderr, flush=True)
    try:
        while True:
            conn = server.accept()[0]
            try:
                write_frame(conn, answer(read_frame(conn)))
            except (EOFError, ValueError, OSError) as err:
                # A broken request costs only its own connection.
                print(f"python-reverse: dropped a connection: {err}", file=sys.stderr, flush=True)
            finally:
                conn.close()
    finally:
        server.close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main()
