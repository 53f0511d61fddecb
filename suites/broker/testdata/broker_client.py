#!/usr/bin/python3
"""A pyzmq (libzmq) DEALER client of the plh broker, written from docs/protocol.md only.

usage: broker_client.py ENDPOINT CHANNEL [SERVER_KEY]
With SERVER_KEY (Z85, 40 chars) the client is a CURVE client with a fresh key pair.
It registers CHANNEL, discovers it, heartbeats, provokes every error code, and
prints one JSON line per step: {"step": ..., "type": reply type, "body": reply}.
Exit 0 when every step got an answer, 2 when the broker did not answer in time.
"""
import json
import os
import sys

import zmq

TIMEOUT_MS = 15000


class Client:
    def __init__(self, ctx, endpoint, server_key):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
        self.sock.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
        if server_key:
            pub, sec = zmq.curve_keypair()
            self.sock.curve_serverkey = server_key.encode()
            self.sock.curve_publickey = pub
            self.sock.curve_secretkey = sec
        self.sock.connect(endpoint)
        self.seq = 0

    def send(self, typ, body, raw=None):
        payload = raw if raw is not None else json.dumps(body).encode()
        self.sock.send_multipart([b"C", typ.encode(), payload])

    def recv(self):
        frames = self.sock.recv_multipart()
        if len(frames) != 3 or frames[0] != b"C":
            raise ValueError("unexpected frames %r" % (frames,))
        return frames[1].decode(), json.loads(frames[2])

    def call(self, typ, body, raw=None, corr=True):
        if corr and raw is None:
            self.seq += 1
            body = dict(body, correlation_id="py-%d-%d" % (os.getpid(), self.seq))
        self.send(typ, body, raw)
        return self.recv()


def emit(step, typ, body):
    print(json.dumps({"step": step, "type": typ, "body": body}), flush=True)


def main():
    endpoint, channel = sys.argv[1], sys.argv[2]
    server_key = sys.argv[3] if len(sys.argv) > 3 else ""
    ctx = zmq.Context()
    prod = Client(ctx, endpoint, server_key)
    cons = Client(ctx, endpoint, server_key)
    pid = os.getpid()
    hash_a, hash_b = "a" * 64, "b" * 64
    try:
        # Unversioned, as the original clients: accepted.
        emit("register", *prod.call("REG_REQ", {
            "channel_name": channel, "shm_name": channel + ".shm", "schema_hash": hash_a,
            "schema_version": 1, "producer_pid": pid, "producer_hostname": "",
            "has_shared_memory": False, "channel_pattern": "PubSub",
            "zmq_ctrl_endpoint": "", "zmq_data_endpoint": "", "zmq_pubkey": "",
            "metadata": {"client": "pyzmq"}}, corr=False))
        emit("disc_before_heartbeat", *cons.call("DISC_REQ", {"channel_name": channel}))
        # HEARTBEAT_REQ has no reply; the broker handles one connection's
        # messages in order, so the DISC_REQ after it sees a Ready channel.
        prod.send("HEARTBEAT_REQ", {"channel_name": channel, "producer_pid": pid})
        emit("discover", *prod.call("DISC_REQ", {"channel_name": channel, "protocol_version": "1.0"}))
        emit("consumer_register", *cons.call("CONSUMER_REG_REQ", {
            "channel_name": channel, "consumer_pid": pid, "consumer_hostname": ""}))
        cons.send("CONSUMER_HEARTBEAT_REQ", {"channel_name": channel, "consumer_pid": pid})
        emit("discover_count", *cons.call("DISC_REQ", {"channel_name": channel}))

        emit("schema_mismatch", *cons.call("REG_REQ", {
            "channel_name": channel, "schema_hash": hash_b, "producer_pid": pid + 1}))
        emit("owner_notified", *prod.recv())
        emit("channel_not_found", *cons.call("DISC_REQ", {"channel_name": channel + ".missing"}))
        emit("not_registered", *cons.call("DEREG_REQ", {"channel_name": channel, "producer_pid": pid + 1}))
        emit("unknown_msg_type", *cons.call("BOGUS_REQ", {"channel_name": channel}))
        emit("version_mismatch", *cons.call("DISC_REQ", {"channel_name": channel, "protocol_version": "2.0"}))
        emit("invalid_request", *cons.call("DISC_REQ", {"channel_name": 42}))
        emit("invalid_request_empty", *cons.call("REG_REQ", {"schema_hash": hash_a, "producer_pid": pid}))

        # Hostile input (docs/protocol.md "Bad input: answered or dropped", "Limits").
        emit("name_invalid_utf8", *cons.call("DISC_REQ", None,
             raw=b'{"channel_name":"coll\xff","correlation_id":"py-utf8"}'))
        emit("name_lone_surrogate", *cons.call("DISC_REQ", {"channel_name": "a\ud800b"}))
        emit("name_control", *cons.call("DISC_REQ", {"channel_name": "a\x01b"}))
        emit("name_too_long", *cons.call("DISC_REQ", {"channel_name": "n" * 100000}))
        emit("pid_zero", *cons.call("CONSUMER_REG_REQ", {"channel_name": channel, "consumer_pid": 0}))
        emit("pid_huge", *cons.call("CONSUMER_REG_REQ", {"channel_name": channel, "consumer_pid": 2**64 - 1}))
        emit("body_too_large", *cons.call("REG_REQ", {"channel_name": channel + ".b", "producer_pid": pid,
                                                      "metadata": {"k": "x" * (300 << 10)}}))
        emit("body_too_deep", *cons.call("REG_REQ", None,
             raw=b'{"correlation_id":"py-deep","metadata":' + b"[" * 100000 + b"]" * 100000 + b"}"))
        emit("body_not_json", *cons.call("DISC_REQ", None, raw=b'{"correlation_id":"py-half","channel_name":'))
        emit("type_empty", *cons.call("", None, raw=b'{"correlation_id":"py-empty"}'))
        emit("type_huge", *cons.call("T" * 100000, None, raw=b'{"correlation_id":"py-huge"}'))
        emit("list_page", *cons.call("CHANNEL_LIST_REQ", {"limit": 1}))

        # Schema registry (protocol 1.1) under a display name: the broker
        # compares the part before " | pid:<pid>-<n>" (logical names).
        named, v100, v110 = channel + ".imu", 1 << 22, (1 << 22) | (1 << 12)
        emit("schema_register", *prod.call("REG_REQ", {
            "channel_name": "%s | pid:%d-0" % (named, pid), "schema_hash": hash_a, "producer_pid": pid,
            "schema_name": "imu", "schema_version": v100, "schema_blds": "t:u64;x:f32", "protocol_version": "1.1"}))
        prod.send("HEARTBEAT_REQ", {"channel_name": named, "producer_pid": pid})
        emit("schema_discover", *prod.call("DISC_REQ", {"channel_name": named, "protocol_version": "1.1"}))
        emit("schema_incompatible", *cons.call("REG_REQ", {
            "channel_name": named, "schema_hash": hash_b, "producer_pid": pid + 2,
            "schema_name": "imu", "schema_version": v110, "schema_blds": "t:u64;x:f64"}))
        emit("schema_owner_notified", *prod.recv())
        emit("schema_upgrade", *prod.call("REG_REQ", {
            "channel_name": named, "schema_hash": hash_b, "producer_pid": pid,
            "schema_name": "imu", "schema_version": v110, "schema_blds": "t:u64;x:f32;y:f32"}))
        emit("schema_bad_blds", *cons.call("REG_REQ", {
            "channel_name": named + ".bad", "producer_pid": pid, "schema_name": "imu", "schema_blds": "t"}))
        emit("schema_close", *cons.call("CHANNEL_CLOSE_REQ", {"channel_name": "%s | pid:1-9" % named}))
        emit("schema_closing_notify", *prod.recv())

        # Structure remapping (protocol 1.2): only the producer's connection may
        # move the channel to a new segment; every party hears it (the consumer,
        # then the producer, before its REMAP_ACK); discovery shows the new layout.
        remap = {"channel_name": channel, "producer_pid": pid, "shm_name": channel + ".remap-1",
                 "schema_hash": "c" * 64, "layout_generation": 1, "final_seq": 7, "protocol_version": "1.2"}
        emit("remap_not_owner", *cons.call("REMAP_REQ", remap))
        emit("remap_producer_notified", *prod.call("REMAP_REQ", remap))
        emit("remap", *prod.recv())
        emit("remap_consumer_notified", *cons.recv())
        emit("remap_discover", *cons.call("DISC_REQ", {"channel_name": channel, "protocol_version": "1.2"}))
        emit("remap_not_forward", *prod.call("REMAP_REQ", remap))

        emit("consumer_deregister", *cons.call("CONSUMER_DEREG_REQ", {"channel_name": channel, "consumer_pid": pid}))
        emit("deregister", *prod.call("DEREG_REQ", {"channel_name": channel, "producer_pid": pid}))
        emit("gone", *cons.call("DISC_REQ", {"channel_name": channel}))
    except zmq.Again:
        print(json.dumps({"step": "timeout"}), flush=True)
        return 2
    finally:
        prod.sock.close()
        cons.sock.close()
        ctx.term()
    print(json.dumps({"step": "done"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
