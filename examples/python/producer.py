#!/usr/bin/env python3
"""A plh Pipeline producer in plain Python, run by plh-sim as a node.

It needs only pyzmq (Debian: python3-zmq), no plh code and no DataBlock:

  * registers the channel with the real broker (REG_REQ over a DEALER, CURVE
    when the engine gives the broker's key) and heartbeats it (every PLH_HEARTBEAT, default 250 ms)
    (docs/protocol.md);
  * serves consumers over the hub's peer protocol on a ROUTER it binds:
    HELLO -> HELLO_ACK with the credit window, data frames ['A'][payload]
    while a consumer has credit, CREDIT adds credit, BYE -> BYE_ACK
    (hub/peer_proto.go); Pipeline: each message goes to one consumer, round
    robin; consumer groups (HELLO "group", B-7): every group gets every
    message once, and the messages a consumer had not acknowledged (CREDIT)
    when it left or died (CONSUMER_DIED_NOTIFY) go to the others of its group;
  * writes the payload plh-node's consumer verifies (sequence, send time,
    pid, pattern: cmd/internal/noderole), so plh-node consumers can read it;
  * writes the event contract of docs/events.md on stdout: ready, written
    (sequence ranges, every 100 ms), notification, exit.

Configuration comes from the PLH_* environment plh-sim sets (PLH_NAME,
PLH_CHANNEL, PLH_BROKER, PLH_BROKER_KEY, PLH_RATE, PLH_SLOT_SIZE, PLH_COUNT,
PLH_HEARTBEAT, PLH_WAIT_CONSUMERS: send nothing until that many consumers
joined, PLH_LINGER: after PLH_COUNT, keep serving the consumers this long).
With --quiet it writes no events at all (a node with events = "none").
"""
import json
import os
import signal
import socket
import struct
import sys
import time

import zmq

ENV = os.environ
NAME = ENV["PLH_NAME"]
CHANNEL = ENV["PLH_CHANNEL"]
RATE = float(ENV.get("PLH_RATE") or 100)
SIZE = max(int(ENV.get("PLH_SLOT_SIZE") or 64), 32)
COUNT = int(ENV.get("PLH_COUNT") or 0)
WAIT_CONSUMERS = int(ENV.get("PLH_WAIT_CONSUMERS") or 0)
PID = os.getpid()
QUIET = "--quiet" in sys.argv[1:]


def seconds(d, default):
    """A Go duration of the simple kinds ("500ms", "2s") in seconds."""
    if not d:
        return default
    if d.endswith("ms"):
        return float(d[:-2]) / 1000
    return float(d.rstrip("s"))


HEARTBEAT = seconds(ENV.get("PLH_HEARTBEAT"), 0.25)
LINGER = seconds(ENV.get("PLH_LINGER"), 0)


def emit(kind, **fields):
    """One event line of docs/events.md on stdout."""
    if QUIET:
        return
    ev = {"t": time.monotonic_ns(), "node": NAME, "kind": kind}
    ev.update(fields)
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def payload(seq):
    """plh-node's payload: seq, CLOCK_MONOTONIC send time, pid, pattern."""
    head = struct.pack("<QQQ", seq, time.monotonic_ns(), PID)
    s = (seq * 131) & 0xFF
    return head + bytes(s ^ ((i * 7 + 1) & 0xFF) for i in range(24, SIZE))


class Broker:
    """The control connection: requests with correlation ids, notifications."""

    def __init__(self, ctx):
        self.s = ctx.socket(zmq.DEALER)
        key = ENV.get("PLH_BROKER_KEY", "")
        if key:
            self.s.curve_serverkey = key.encode()
            self.s.curve_publickey, self.s.curve_secretkey = zmq.curve_keypair()
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.connect(ENV["PLH_BROKER"])
        self.n = 0

    def send(self, typ, body):
        self.s.send_multipart([b"C", typ.encode(), json.dumps(body).encode()])

    def request(self, typ, body, timeout_ms=5000):
        self.n += 1
        body = dict(body, correlation_id=f"py-{PID}-{self.n}", protocol_version="1.0")
        self.send(typ, body)
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            if self.s.poll(100):
                frames = self.s.recv_multipart()
                reply = json.loads(frames[2])
                if reply.get("correlation_id") == body["correlation_id"]:
                    return frames[1].decode(), reply
                self.notice(frames)
        raise TimeoutError(f"{typ}: no reply from the broker")

    def notice(self, frames):
        """A notification from the broker: reported as a notification event."""
        typ, body = frames[1].decode(), json.loads(frames[2])
        if typ.endswith("_NOTIFY"):
            fields = {k: v for k, v in body.items() if k != "channel_name"}
            emit("notification", type=typ, channel=body.get("channel_name", CHANNEL), **fields)
        return typ, body


class Group:
    """A consumer group (B-7): its members split the stream, round robin among
    those with credit; items handed back by a departed member go first."""

    def __init__(self):
        self.members = []  # identities, join order
        self.redo = []  # payloads to deliver again, oldest first


class Peers:
    """The peer ROUTER: joined consumers, their credit and their groups.

    Pipeline: the consumers without a group name are the group ""; a consumer
    with a HELLO "group" joins that group, and every group gets every item once
    (docs/protocol.md "Peer link: consumer groups"). Each item stays in its
    member's in-flight list until CREDIT acknowledges it; a member that leaves
    (BYE), dies (CONSUMER_DIED_NOTIFY) or says HELLO again hands its in-flight
    items back to its group."""

    def __init__(self, ctx):
        self.s = ctx.socket(zmq.ROUTER)
        self.s.setsockopt(zmq.LINGER, 0)
        self.s.bind(ENV.get("PLH_ENDPOINT") or "tcp://127.0.0.1:0")
        self.endpoint = self.s.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.credit = {}  # identity -> messages it may still receive
        self.group = {}  # identity -> group name
        self.pid = {}  # identity -> consumer_pid
        self.inflight = {}  # identity -> payloads sent, not yet acknowledged
        self.groups = {}  # name -> Group
        self.done = set()  # groups that have the item send() is delivering
        self.order = []

    def handle(self):
        frames = self.s.recv_multipart()
        ident, rest = frames[0], frames[1:]
        if len(rest) < 2 or rest[0] != b"C":
            return
        typ, body = rest[1].decode(), (rest[2] if len(rest) > 2 else b"")
        if typ == "HELLO":
            hello = json.loads(body or b"{}")
            group = hello.get("group") or ""
            if not isinstance(group, str) or len(group.encode()) > 256 or not group.isprintable():
                return  # malformed: dropped unanswered, as the Go producer does
            window = int(hello.get("window") or 256)
            if ident in self.credit:
                self.leave(ident)  # its new window voids the old credit
            else:
                self.order.append(ident)
            self.credit[ident], self.pid[ident] = window, hello.get("consumer_pid", 0)
            ack = {"channel_name": CHANNEL, "pattern": "Pipeline", "window": window}
            if group:
                ack["group"] = group
            self.s.send_multipart([ident, b"C", b"HELLO_ACK", json.dumps(ack).encode()])
            self.join(ident, group)
            emit("consumer_joined", channel=CHANNEL, identity=ident.hex(), consumer_pid=hello.get("consumer_pid", 0))
        elif typ == "CREDIT" and ident in self.credit:
            n = int(json.loads(body).get("n", 0))
            self.credit[ident] += n
            del self.inflight[ident][:n]
            self.pump(self.groups[self.group[ident]])
        elif typ == "BYE" and ident in self.credit:
            self.drop(ident)
            self.s.send_multipart([ident, b"C", b"BYE_ACK", b""])
            emit("consumer_left", channel=CHANNEL, identity=ident.hex())

    def join(self, ident, name):
        g = self.groups.setdefault(name, Group())
        g.members.append(ident)
        self.group[ident], self.inflight[ident] = name, []
        self.pump(g)

    def leave(self, ident):
        """Takes ident out of its group, handing its unacknowledged items back."""
        name = self.group.pop(ident)
        g = self.groups[name]
        g.members.remove(ident)
        g.redo.extend(self.inflight.pop(ident))
        if g.members:
            self.pump(g)
        else:  # nobody left to read what it held
            del self.groups[name]
            self.done.discard(name)

    def drop(self, ident):
        self.leave(ident)
        del self.credit[ident], self.pid[ident]
        self.order.remove(ident)

    def died(self, pid):
        """CONSUMER_DIED_NOTIFY: the consumers of that pid are gone."""
        for ident in [i for i in self.order if self.pid[i] == pid]:
            self.drop(ident)

    def pick(self, g):
        for _ in range(len(g.members)):
            ident = g.members.pop(0)
            g.members.append(ident)
            if self.credit[ident] > 0:
                return ident
        return None

    def deliver(self, ident, data):
        self.credit[ident] -= 1
        self.inflight[ident].append(data)
        self.s.send_multipart([ident, b"A", data])

    def pump(self, g):
        while g.redo:
            ident = self.pick(g)
            if ident is None:
                return
            self.deliver(ident, g.redo.pop(0))

    def send(self, data):
        """Gives data to one member of every group; False until every group has
        it (call again with the same item: the groups that have it are skipped)."""
        if not self.groups:
            return False
        for name, g in self.groups.items():
            if name in self.done:
                continue
            self.pump(g)
            ident = None if g.redo else self.pick(g)
            if ident is None:
                return False
            self.deliver(ident, data)
            self.done.add(name)
        self.done.clear()
        return True


def main():
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("signal"))
    signal.signal(signal.SIGINT, lambda *_: stop.append("signal"))
    ctx = zmq.Context()
    broker, peers = Broker(ctx), Peers(ctx)
    typ, reply = broker.request("REG_REQ", {
        "channel_name": CHANNEL, "shm_name": "", "schema_hash": "", "schema_version": 0,
        "producer_pid": PID, "producer_hostname": socket.gethostname(), "has_shared_memory": False,
        "channel_pattern": "Pipeline", "zmq_ctrl_endpoint": peers.endpoint,
        "zmq_data_endpoint": peers.endpoint, "zmq_pubkey": ""})
    if reply.get("status") != "success":
        emit("error", op="register", error=f"{typ}: {reply.get('message')}")
        emit("exit", code=1, reason="error", written=0)
        return 1
    beat = {"channel_name": CHANNEL, "producer_pid": PID}
    broker.send("HEARTBEAT_REQ", beat)
    emit("registered", channel=CHANNEL, pattern="Pipeline", shm=False)
    emit("ready", role="producer", channel=CHANNEL, pid=PID)

    poller = zmq.Poller()
    poller.register(broker.s, zmq.POLLIN)
    poller.register(peers.s, zmq.POLLIN)
    seq, first, total = 0, None, 0
    period, next_send = 1.0 / RATE, time.monotonic()
    next_beat = next_flush = time.monotonic()
    reason = "done"
    while not stop and len(peers.order) < WAIT_CONSUMERS:  # every group sees the first item
        for s, _ in poller.poll(100):
            if s is peers.s:
                peers.handle()
            else:
                broker.notice(broker.s.recv_multipart())
        if time.monotonic() >= next_beat:
            broker.send("HEARTBEAT_REQ", beat)
            next_beat = time.monotonic() + HEARTBEAT
    next_send, linger_end = time.monotonic(), None
    while not stop:
        now = time.monotonic()
        sending = not (COUNT and seq >= COUNT)
        if not sending:  # count reached: serve the consumers for PLH_LINGER, then end
            linger_end = now + LINGER if linger_end is None else linger_end
            if now >= linger_end:
                break
        if now >= next_beat:
            broker.send("HEARTBEAT_REQ", beat)
            next_beat = now + HEARTBEAT
        if sending and now >= next_send and peers.send(payload(seq)):
            first = seq if first is None else first
            seq += 1
            next_send += period
            if next_send < now - 1.0:  # paused or starved: do not burst to catch up
                next_send = now
        if now >= next_flush:
            if first is not None:
                emit("written", channel=CHANNEL, count=seq - first, first_seq=first, last_seq=seq - 1,
                     bytes=(seq - first) * SIZE)
                total += seq - first
                first = None
            next_flush = now + 0.1
        wait = max(0.0, min(next_send if sending else linger_end, next_beat, next_flush) - time.monotonic())
        for s, _ in poller.poll(wait * 1000):
            if s is peers.s:
                peers.handle()
            else:
                typ, body = broker.notice(broker.s.recv_multipart())
                if typ == "CHANNEL_CLOSING_NOTIFY":
                    stop.append("done")
                elif typ == "CONSUMER_DIED_NOTIFY":
                    peers.died(body.get("consumer_pid"))
    if stop:
        reason = stop[0]
    if first is not None:
        emit("written", channel=CHANNEL, count=seq - first, first_seq=first, last_seq=seq - 1, bytes=(seq - first) * SIZE)
        total += seq - first
    for ident in peers.order:  # tell the consumers the channel is closed
        peers.s.send_multipart([ident, b"C", b"BYE", b""])
    try:
        broker.request("DEREG_REQ", {"channel_name": CHANNEL, "producer_pid": PID}, timeout_ms=1000)
    except TimeoutError:
        pass
    emit("exit", code=0, reason=reason, written=total)
    ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
