#!/usr/bin/python3
"""libzmq CURVE DEALER with ZMTP heartbeats, for heartbeat_test.go.

usage: heartbeat.py ENDPOINT SERVER_PUBLIC SECONDS

Connects with heartbeat_ivl=1000 ms, sends a request, stays idle for SECONDS
(only heartbeats flow), sends another, and expects each echoed within 3 s. Prints one JSON line with the number of
replies and of disconnects seen by the socket monitor. Exits 0 only if every
request was answered and the connection was never dropped.
"""
import json
import sys
import time
import zmq


def main():
    endpoint, server_pub, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    pub, sec = zmq.curve_keypair()
    s.curve_secretkey, s.curve_publickey = sec, pub
    s.curve_serverkey = server_pub.encode()
    s.heartbeat_ivl = 1000
    s.heartbeat_timeout = 3000
    s.rcvtimeo = 3000
    mon = s.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED)
    s.connect(endpoint)
    replies, rc = 0, 0
    for i in range(2):
        if i:
            time.sleep(seconds)
        req = [b"hb-%d" % i]
        s.send_multipart(req)
        try:
            rep = s.recv_multipart()
        except zmq.Again:
            rc = 1
            break
        if rep != req:
            rc = 1
            break
        replies += 1
    disconnects = 0
    while mon.poll(0):
        mon.recv_multipart()
        disconnects += 1
    if disconnects:
        rc = 1
    print(json.dumps({"replies": replies, "disconnects": disconnects}), flush=True)
    s.disable_monitor()
    mon.close(0)
    s.close(0)
    ctx.term()
    return rc


if __name__ == "__main__":
    sys.exit(main())
