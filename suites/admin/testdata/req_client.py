#!/usr/bin/python3
"""A pyzmq REQ client of the admin endpoint, as the original hubshell_client.

usage: req_client.py ENDPOINT TOKEN CODE [CODE...]
Sends each CODE in turn (TOKEN "" = none), prints every reply as one JSON line,
exits 0 if all succeeded, 1 otherwise, 2 on a timeout.
"""
import json
import sys

import zmq


def main():
    endpoint, token, codes = sys.argv[1], sys.argv[2], sys.argv[3:]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, 10000)
    sock.setsockopt(zmq.SNDTIMEO, 5000)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    status = 0
    try:
        for code in codes:
            req = {"code": code}
            if token:
                req["token"] = token
            sock.send_string(json.dumps(req))
            try:
                reply = json.loads(sock.recv_string())
            except zmq.Again:
                print("timeout", file=sys.stderr)
                return 2
            print(json.dumps(reply), flush=True)
            if not reply.get("success"):
                status = 1
    finally:
        sock.close(0)
        ctx.term()
    return status


if __name__ == "__main__":
    sys.exit(main())
