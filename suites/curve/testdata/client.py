#!/usr/bin/python3
"""libzmq CURVE DEALER client for the curve suite (Debian python3-zmq).

usage: client.py ENDPOINT SERVER_PUBLIC CLIENT_SECRET|- COUNT TIMEOUT_MS

Sends COUNT multipart requests [b"req-N", b"", 4 KiB payload] and expects each
one echoed back. Prints "ok N" after every reply, "timeout" when no reply came in
TIMEOUT_MS, and exits 0 only if every reply matched.
"""
import sys
import zmq


def main():
    endpoint, server_pub, client_sec, count, timeout = sys.argv[1:6]
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
    print("client", pub.decode(), flush=True)
    rc = 0
    for i in range(int(count)):
        payload = bytes([i % 256]) * 4096
        req = [b"req-%d" % i, b"", payload]
        try:
            s.send_multipart(req)
            rep = s.recv_multipart()
        except zmq.Again:
            print("timeout", flush=True)
            rc = 1
            break
        if rep != req:
            print("mismatch", i, [len(f) for f in rep], flush=True)
            rc = 1
            break
        print("ok", i, flush=True)
    s.close(0)
    ctx.term()
    return rc


if __name__ == "__main__":
    sys.exit(main())
