#!/usr/bin/python3
"""libzmq CURVE ROUTER server for the curve suite (Debian python3-zmq).

usage: server.py SERVER_SECRET

Binds tcp://127.0.0.1:* as a CURVE server, prints "ready ENDPOINT PUBLIC", then
echoes every multipart message back to its sender (the reply also carries
b"pyzmq" as a last frame) until stdin closes. libzmq's handshake failures are
printed as "event ..." lines from the socket monitor.
"""
import sys
import threading
import zmq
from zmq.utils.monitor import recv_monitor_message


def main():
    sec = sys.argv[1].encode()
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
    print("ready", s.getsockopt(zmq.LAST_ENDPOINT).decode(), zmq.curve_public(sec).decode(), flush=True)

    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    poller.register(mon, zmq.POLLIN)
    while not stop.is_set():
        for sock, _ in poller.poll(100):
            if sock is mon:
                ev = recv_monitor_message(mon)
                print("event", ev["event"], ev["value"], flush=True)
            else:
                msg = s.recv_multipart()
                s.send_multipart(msg + [b"pyzmq"])
    s.disable_monitor()
    mon.close(0)
    s.close(0)
    ctx.term()


if __name__ == "__main__":
    main()
