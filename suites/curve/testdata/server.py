#!/usr/bin/python3
"""libzmq CURVE ROUTER server for the curve suite (Debian python3-zmq).

usage: server.py NODE SERVER_SECRET

Binds tcp://127.0.0.1:* as a CURVE server and writes one JSON event per line
(docs/events.md): "server_ready" (endpoint, public key), "monitor" for libzmq
handshake events, "echo" per message. Every multipart message is sent back to
its sender with b"pyzmq" appended. Runs until killed (SIGTERM).
"""
import json
import sys
import time
import zmq
from zmq.utils.monitor import recv_monitor_message


def emit(node, kind, **fields):
    fields.update(t=time.monotonic_ns(), node=node, kind=kind)
    print(json.dumps(fields), flush=True)


def main():
    node, sec = sys.argv[1], sys.argv[2].encode()
    ctx = zmq.Context()
    s = ctx.socket(zmq.ROUTER)
    s.linger = 0
    s.curve_server = True
    s.curve_secretkey = sec
    s.curve_publickey = zmq.curve_public(sec)
    mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                               | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                               | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                               | zmq.EVENT_HANDSHAKE_SUCCEEDED
                               | zmq.EVENT_DISCONNECTED)
    s.bind("tcp://127.0.0.1:*")
    emit(node, "server_ready", endpoint=s.getsockopt(zmq.LAST_ENDPOINT).decode(),
         public=zmq.curve_public(sec).decode())
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    poller.register(mon, zmq.POLLIN)
    while True:
        for sock, _ in poller.poll():
            if sock is mon:
                ev = recv_monitor_message(mon)
                emit(node, "monitor", event=ev["event"], value=ev["value"])
            else:
                msg = s.recv_multipart()
                emit(node, "echo", frames=len(msg) - 1)
                s.send_multipart(msg + [b"pyzmq"])


if __name__ == "__main__":
    main()
