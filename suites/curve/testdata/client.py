#!/usr/bin/python3
"""libzmq CURVE DEALER client for the curve suite (Debian python3-zmq).

usage: client.py NODE ENDPOINT SERVER_PUBLIC CLIENT_SECRET|- COUNT TIMEOUT_MS

Sends COUNT multipart requests [b"req-N", b"", 4 KiB payload] and expects each
one echoed back. Writes one JSON event per line (docs/events.md): "client_ready"
(its public key), "reply" per matching reply, "timeout" when no reply came within
TIMEOUT_MS, "mismatch" for a wrong reply. Exits 0 only if every reply matched.
"""
import json
import sys
import time
import zmq


def emit(node, kind, **fields):
    fields.update(t=time.monotonic_ns(), node=node, kind=kind)
    print(json.dumps(fields), flush=True)


def main():
    node, endpoint, server_pub, client_sec, count, timeout = sys.argv[1:7]
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    if client_sec == "-":
        pub, sec = zmq.curve_keypair()
    else:
        sec = client_sec.encode()
        pub = zmq.curve_public(sec)
    s.curve_secretkey = sec
    s.curve_publickey = pub
    s.curve_serverkey = server_pub.encode()
    s.rcvtimeo = int(timeout)
    s.sndtimeo = int(timeout)
    s.connect(endpoint)
    emit(node, "client_ready", public=pub.decode(), libzmq=zmq.zmq_version())
    rc = 0
    for i in range(int(count)):
        req = [b"req-%d" % i, b"", bytes([i % 256]) * 4096]
        try:
            s.send_multipart(req)
            rep = s.recv_multipart()
        except zmq.Again:
            emit(node, "timeout", i=i)
            rc = 1
            break
        if rep != req:
            emit(node, "mismatch", i=i, sizes=[len(f) for f in rep])
            rc = 1
            break
        emit(node, "reply", i=i)
    s.close(0)
    ctx.term()
    return rc


if __name__ == "__main__":
    sys.exit(main())
