#!/usr/bin/python3
"""A pyzmq client of the plh broker's CHECKSUM_ERROR_REPORT (docs/protocol.md).

usage: checksum_client.py ENDPOINT CHANNEL
Registers CHANNEL as a shared-memory channel whose segment (shm_name) does not
exist, registers a consumer, reports a checksum error from the consumer and
prints the CHANNEL_EVENT_NOTIFY each party gets, one JSON line per step:
{"step": ..., "type": message type, "body": body}. NULL security.
Exit 0 when every step got an answer, 2 when the broker did not answer in time.
"""
import json
import os
import sys

import zmq

TIMEOUT_MS = 15000


def dealer(ctx, endpoint):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    s.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
    s.connect(endpoint)
    return s


def send(sock, typ, body):
    sock.send_multipart([b"C", typ.encode(), json.dumps(body).encode()])


def recv(sock):
    frames = sock.recv_multipart()
    if len(frames) != 3 or frames[0] != b"C":
        raise ValueError("unexpected frames %r" % (frames,))
    return frames[1].decode(), json.loads(frames[2])


def emit(step, typ, body):
    print(json.dumps({"step": step, "type": typ, "body": body}), flush=True)


def main():
    endpoint, channel = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    prod, cons = dealer(ctx, endpoint), dealer(ctx, endpoint)
    pid = os.getpid()
    try:
        send(prod, "REG_REQ", {"channel_name": channel, "shm_name": channel + "_missing", "producer_pid": pid,
                               "producer_hostname": "", "has_shared_memory": True, "correlation_id": "r1",
                               "protocol_version": "1.0"})
        emit("register", *recv(prod))
        send(prod, "HEARTBEAT_REQ", {"channel_name": channel, "producer_pid": pid})
        send(cons, "CONSUMER_REG_REQ", {"channel_name": channel, "consumer_pid": pid, "consumer_hostname": "",
                                        "correlation_id": "c1", "protocol_version": "1.0"})
        emit("consumer_register", *recv(cons))
        send(cons, "CHECKSUM_ERROR_REPORT", {"channel_name": channel, "slot_index": 1,
                                             "error": "slot checksum mismatch", "reporter_pid": pid})
        emit("consumer_told", *recv(cons))
        emit("producer_told", *recv(prod))
    except zmq.Again:
        print(json.dumps({"step": "timeout"}), flush=True)
        return 2
    finally:
        prod.close()
        cons.close()
        ctx.term()
    print(json.dumps({"step": "done"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
