// Package hub is the client library of plh: the Messenger (broker client) and
// the Producer and Consumer built on it. It is only the library: the hub
// process (its configuration and the admin shell) lives in hubd, which does
// not use this package. Messages and their frames come from broker/proto,
// sockets from internal/wire, the ring from shm.
//
// # Files
//
// One job per file; one request reads in messenger_request.go (with the
// session it travels on in messenger_session.go):
//
//   - messenger.go: MessengerConfig, the Messenger type, NewMessenger,
//     Disconnect, Close; clientSecurity (CURVE to the broker).
//   - messenger_request.go: the calls (RegisterProducer, Discover, ...), sending
//     a request and matching its reply (call, the pending table,
//     handleIncoming), and the request/reply types (ProducerInfo, ChannelInfo).
//   - messenger_session.go: Connect, the session (readLoop, tickLoop, wire
//     events, heartbeats, loss) and recovery after a broker restart (the owned
//     channels registered again).
//   - messenger_notify.go: notifications (On… subscriptions, ChannelNotice) and
//     the callback dispatcher.
//   - security_mismatch.go: a failed security handshake ends Connect at once.
//   - producer.go: the Producer, composing its peer link and its ring writer
//     with the broker registration, Start/Stop and Close.
//   - producer_peer.go: producerLink, the peer link (ROUTER, consumer table,
//     HELLO/BYE, peer heartbeats, credit, Send/SendTo/SendCtrl, Flush).
//   - producer_sendfunc.go: SendFunc, a data message written in place into
//     a pooled send buffer ("Bulk data over the socket").
//   - producer_group.go: consumer groups (B-7) and Pipeline's split: one
//     member per item, in-flight items acknowledged by CREDIT and handed back
//     to the group when a member leaves or dies.
//   - producer_shm.go: ringWriter, the ring writer (DataBlock, pooled Writers,
//     WriteTxn, Push, SyncedWrite, the write goroutine).
//   - producer_conflict.go: a producer whose segment name a live process owns
//     is refused without touching it (through the broker's SCHEMA_MISMATCH when
//     the owner registered another schema, so the owner is told).
//   - consumer.go: the Consumer, composing its peer link and its ring reader
//     with the broker registration, Start/Stop and Close.
//   - consumer_peer.go, consumer_lost.go: consumerLink, the peer link (Dealer,
//     HELLO/BYE, heartbeats, credit, Recv, Send, REJOIN; producer-loss
//     detection).
//   - consumer_recvbuf.go: the receive buffers of the peer link and
//     RecvFunc ("Bulk data over the socket").
//   - consumer_follow.go: following a restarted producer (re-discovery, the
//     switch to the successor's endpoint and DataBlock).
//   - consumer_shm.go: ringReader, the ring reader (attached DataBlock, the
//     sole-reader lock where the ring allows one reader, ReadTxn, Pull, the read
//     goroutine; the whole attachment is replaced after a producer restart,
//     only its Reader after a lost heartbeat entry).
//   - ring_health.go: ring faults (ringHealth: counters, EventRingError
//     notices per distinct cause and their reminders; ringBackoff, the pause
//     of the write and read goroutines after a fault).
//   - discovery_file.go: brokerless discovery (discovery records, the
//     Discover fallback, standalone producers; "Without a broker" below).
//   - remap.go: structure remapping (B-19; "Structure remapping" below):
//     Producer.Remap, the REMAP_REQ, the consumer's move to the new layout.
//   - peer_proto.go: the peer message bodies; channel_curve.go: producer-consumer
//     CURVE; channel.go: the peer callback queue; options_channel.go: the
//     Producer and Consumer options; managed.go: the managed wrappers;
//     errors.go: every sentinel error of the package.
//
// # Messenger
//
// A Messenger is an explicit object (NewMessenger; no process singleton) holding
// one broker connection: a wire.Dealer, which redials with backoff by itself and
// whose single writer goroutine owns the zmq4 socket. Around it, per Connect:
//
//   - readLoop: the only receiver. A reply is matched to its caller by
//     correlation_id through the pending table (every request carries a unique id
//     and protocol_version); a reply nobody waits for any more is dropped. A
//     *_NOTIFY message is decoded and its callbacks are queued. It never blocks.
//   - tickLoop: every HeartbeatInterval it asks heartbeatLoop for a round
//     (HEARTBEAT_REQ per channel we produce, CONSUMER_HEARTBEAT_REQ per channel
//     we consume); the PING_REQ probe every PingInterval, the silence check, and
//     wire's connection events. Heartbeats never wait behind a pending request,
//     go on while the broker is silent or recovering (only a missing connection
//     stops them), and a full DEALER queue paces a round instead of ending it,
//     so thousands of channels are all heartbeated.
//   - a recovery goroutine after the broker came back (below).
//
// Callers send directly (wire.Dealer.Send never blocks) and wait on their own
// reply channel with their context, so any number of goroutines can call at once
// (B-14). Callbacks run on one dispatcher goroutine, in arrival order, with panics
// recovered: a slow callback never delays replies or heartbeats. Any number of
// callbacks per channel; each On… returns its unsubscribe function.
//
// States: idle → connecting (Connect waits for the first PING_ACK) → up. The
// broker is lost when its connection drops (at once) or it is silent for
// LostAfter (default max(RequestTimeout, 2 × PingInterval) = 5 s, B-2; a reply
// that is merely late, as over a slow link, is not a loss): pending calls fail
// with ErrBrokerLost, new calls fail fast, OnBrokerLost runs. When wire
// reconnects (or a PING_ACK arrives) the state is recovering: every channel we
// produce is registered again with its original ProducerInfo (the broker treats
// it as a producer restart) and heartbeated, every consumer registration is
// repeated with its identity (pid, start time, host name and its consumer_id,
// so a broker that kept the entry, e.g. after a mere pause, replaces it), at
// most 64 registrations in flight (paced by the replies), then the state is
// up and OnBrokerReconnected runs (B-1). Consumer registrations whose channel is
// not known yet are retried in the background for ReregisterWindow. Every
// threshold is listed in docs/config.md "Timeouts and thresholds".
//
// Protocol trace (B-13): the session traces every frame it sends (send) and
// receives (readLoop) through internal/trace when MessengerConfig.Trace or
// SetTrace switched it on; bodies are never written. Notification callbacks are
// keyed by logical channel name (B-21), as the broker compares names.
//
// Locks: Messenger.connMu serialises Connect/Disconnect/Close and is held while
// Connect waits; Messenger.mu guards state and the current session and is never
// held while sending or waiting. The pending table, the owned set and each
// callback list have their own mutex, always taken alone (no nesting). Invariant:
// a pending entry is only added under Messenger.mu while the state allows
// requests, and every state change that ends requests happens under Messenger.mu
// before the table is failed, so no caller waits for a reply that cannot come.
//
// # Producer and Consumer
//
// The channel layer beside the Messenger.
//
// Peer link. A consumer and its producer share one connection: the consumer's
// wire.Dealer (routing identity = its ConsumerIdentity.ID) to the producer's
// wire.Router. Control frames (HELLO, HELLO_ACK, BYE, PEER_HEARTBEAT, CREDIT and
// user types) and data frames travel on it in order (peer_proto.go). The channel
// registers DataEndpoint = CtrlEndpoint for PubSub/Pipeline and "" for Bidir.
// wire owns the zmq4 sockets (one writer goroutine per socket; our sends are
// queued through channels and never block); we run one receive goroutine per
// socket.
//
// Joining. Connect sends HELLO and returns once HELLO_ACK arrived. The producer
// counts a consumer joined when it handles HELLO, and only joined consumers get
// data; since HELLO_ACK and data share the ordered connection, nothing sent after
// the join is lost to the slow-joiner effect of PUB/SUB.
//
// Flow control. Each consumer grants a credit window (HELLO.window); every data
// message to it costs one credit; it returns credits (CREDIT) as its user consumes
// messages. PubSub Send waits until every joined consumer has credit (under
// SlowConsumerBlock; below); Pipeline
// Send picks one joined consumer with credit (round robin), so each message goes
// to exactly one consumer and a slow consumer gets fewer; both wait up to their
// deadline (backpressure) and then fail with ErrBackpressure / ErrNoConsumers.
//
// Bulk data over the socket. Send copies the payload (into a pooled buffer the
// Router writes from by reference) and Recv returns a slice the caller owns,
// so each message costs one copy on the producer and a new body (allocated,
// zeroed, later collected) on the consumer: at 64 KiB, about half the CPU of
// both processes beside the kernel's own copies. Two opt-in calls remove both;
// Send and Recv keep their behaviour:
//   - Producer.SendFunc(ctx, n, fill) hands fill a pooled buffer of n bytes
//     (undefined content) to write the message into; it is then sent like
//     Send's copy (same flow control and errors) and is the producer's again
//     when SendFunc returns.
//   - Consumer.RecvFunc(ctx, fn) calls fn with the message in the buffer it
//     was read into from the network (wire.Dealer.SetAlloc gives the link's
//     allocator every body over 64 bytes) and, once fn returns, puts that
//     buffer on the link's free list (Window+16 buffers, each up to 1 MiB),
//     where the next message of at most its size is read into it. fn must not
//     keep b. The message counts as consumed (credit, a group's
//     acknowledgement) when fn returns. A message Recv returned is never
//     recycled, so the two calls mix freely.
//
// With both, the 64 KiB NULL socket path costs less than half the CPU per message
// (plh-bench hub uses them: docs/design.md "Socket data path").
//
// Consumer groups (B-7, producer_group.go). Consumers with the same
// ConsumerOptions.Group (HELLO "group", echoed by HELLO_ACK) split the stream
// as Pipeline does; a Pipeline channel's consumers without a name are the
// group "". Send gives every item to one member with credit of every group
// (a group always waits for credit) after the fan-out to the consumers
// without a group. A member's items stay in its in-flight list until its
// CREDIT acknowledges them (the link is ordered, so CREDIT n covers its n
// oldest); a member that leaves, dies or says HELLO again hands them back and
// they go to the other members first (ChannelStats.Redelivered). Members of a
// named group return credit after every item, every consumer before BYE.
// On the ring (consumer_group_shm.go): a member with Secret on a channel with
// a Sync_reader ring joins the group there too (shm.Block.JoinGroup, no
// sole-reader lock): every committed slot goes to one member, a dead member's
// held slot to another, and the group holds the writer back as one reader.
// Other ring policies refuse it (ErrGroupUnsupported). The producer sweeps
// group segments left by dead members when it closes its DataBlock.
// zmq4's PUSH (copies to every peer) and PUB (drops at its HWM) are not used.
//
// Slow consumers (PubSub). ProducerOptions.SlowConsumer decides what a PubSub
// Send does with a consumer without credit, as brokers do: SlowConsumerBlock
// waits for it as above; SlowConsumerDrop (the default) waits at most
// SlowConsumerAfter, then marks it slow (peerState.slow, OnSlowConsumer) and
// skips it without waiting, counting what it missed, until it returns credit:
// the next message it gets is preceded by GAP{missed} (consumer: OnMissed,
// Stats().Missed); SlowConsumerDisconnect drops it after SlowConsumerAfter and
// sends SLOW_CONSUMER (consumer: OnChannelError, EventSlowConsumer), and the
// REJOIN below re-admits it when it speaks again. Flush does not wait for a
// consumer marked slow. Pipeline and Bidir always wait for credit.
//
// Peer table bound. At most MaxPeers consumers are joined; a HELLO beyond is
// dropped unanswered. A HELLO without heartbeat_ms gets PeerTimeout/2, so a
// foreign peer that joins and goes silent is pruned; the producer sends it
// REJOIN then, in case it is a live client that is merely idle.
//
// Re-admission. A producer drops a consumer it believes dead (peer heartbeat
// timeout, CONSUMER_DIED_NOTIFY). When such a consumer is heard again (any
// message from an identity not joined) the producer answers REJOIN; the
// consumer says HELLO again (OnRejoined) and renews its broker registration,
// so a paused consumer never starves silently.
//
// Producer restart. A consumer whose peer link is lost looks for a successor
// producer (consumer_follow.go): it discovers the channel again with backoff
// and, when a new incarnation (pid, endpoint, key) registered it, dials it,
// re-attaches its DataBlock (ringReader.followProducer: a new attachment with
// its own Reader, under the same ExpectSHM/RequireChecksum checks and ring-fault
// handling; RingStats go on counting) and says HELLO (OnProducerRestarted); a
// closed channel (CHANNEL_CLOSING_NOTIFY) or a BYE ends the search.
//
// Goroutines. Producer: peerLoop (Router.Recv → HELLO/BYE/CREDIT/user types),
// tickLoop (prunes consumers silent for PeerTimeout, B-4), the callback goroutine
// while started, and with SHM the write goroutine while started (Push jobs or the
// real-time handler). Consumer: readLoop (Dealer.Recv → data queue / control),
// tickLoop (PEER_HEARTBEAT, unsent credits, redial events → HELLO again, a link
// lost for ProducerLostAfter without BYE → OnProducerLost once, consumer_lost.go),
// the follower (consumer_follow.go), the callback and data goroutines while
// started, and with SHM the read goroutine while started. Close stops all of
// them; Stop only the started ones. readLoop and tickLoop work on the current
// Dealer (consumerLink.dealer) and move to the successor's when it is replaced.
//
// Locks. producerLink.mu guards the consumer table, credits and the wake
// channel; the consumer's credit counters are atomic; consumerLink.dmu guards
// the current Dealer; ringReader.mu is held shared by every read transaction
// and exclusively while a producer restart replaces the attachment
// (ringReader.followProducer; waiting transactions are ended first);
// ringAttach.rmu, taken inside a transaction, serialises the replacement of
// that attachment's Reader after shm.ErrEntryLost (ringReader.replaceReader;
// the delivered/fresh bookkeeping is per attachment, since a successor's ring
// numbers its slots afresh); consumer.infoMu guards the discovery record.
// No lock is held while calling user code, the Messenger or blocking; wire
// sends are non-blocking.
// ringWriter.runMu (RW) orders Push against Stop so every accepted job runs
// before Stop returns.
//
// Ring readers. The DataBlock ring is one stream every attached reader sees
// (by the ring's policy); it cannot split items among consumers (consumer
// groups split the peer link only). A Consumer attaching the ring takes its
// place only where the ring can honour the channel's pattern:
//
//	policy          PubSub, Bidir                        Pipeline
//	Latest_only     any number (each sees the newest)    one reader
//	Single_reader   one reader (one read cursor)         one reader
//	Sync_reader     up to 8 (each reads every item)      one reader
//
// Where one reader is allowed, the ring reader holds the segment's sole-reader
// lock (shm.Block.LockSoleReader, an OFD lock the kernel drops when the reader
// closes or dies) before it registers in the ring; a second Consumer's Connect
// fails with ErrRingReaderTaken and touches nothing. Several Single_reader
// readers would race for one cursor (items lost and duplicated), several
// Pipeline readers would each read every item. Sync_reader's 8 is its heartbeat
// pool (shm.ErrNoConsumerEntry beyond).
//
// # Ring faults
//
// Any process of the same user can scribble on a live segment's control zone
// (shm doc, "A scribbled control zone"). The ring's waits then return
// shm.ErrCorrupt at once (read_index beyond write_index, a reader count nobody
// owns, a write lock held by a live stranger, ...) instead of waiting for
// good, and a Reader whose heartbeat entry was taken over returns
// shm.ErrEntryLost. The ring sides treat them as channel errors:
//
//   - Report. A WriteTxn or ReadTxn step that meets shm.ErrCorrupt returns it
//     (the job decides) and the party reports it through OnChannelError: a
//     ChannelNotice with Type "", Event EventRingError and Ring (RingIssue: the
//     error, errors.Is-testable, its cause, counts). Once per distinct cause
//     (the error's text with numbers elided), then a reminder (Ring.Ongoing)
//     every RingErrorEvery (default 1 s) while the cause is still seen, so a
//     party blocked on a corrupt ring is never silent. Notices run on the
//     Messenger's callback goroutine like the broker's, never after Close.
//     A commit_index scribbled beyond write_index is set back by the next
//     commit: the slot is published, Publish returns nil, the notice is raised.
//   - Back off. The write goroutine (Push jobs, write handler) and the read
//     goroutine (read handler) pause after a transaction that met a fault:
//     10 ms, doubling up to 1 s, reset by a transaction without one; Stop and
//     Close cut the pause short. (Without it a handler retried at once: about
//     a million transactions a second, each logged.) SyncedWrite and Pull
//     callers get the error and pace themselves.
//   - Reattach. On shm.ErrEntryLost the Consumer replaces its Reader by a new
//     one on the same Block (ringReader.replaceReader: only the Reader of the
//     current attachment; the sole-reader lock stays held), makes the
//     acquisition again and raises EventRingReattached (RingStats.Reattached
//     counts them); the job does not see the error. The new Reader first
//     passes over the slots the Consumer already delivered, so none is
//     delivered twice; under Sync_reader its cursor starts at the newest
//     commit, like a late joiner's, so a consumer that lagged misses what lay
//     between its last read and that commit. When no heartbeat entry is free
//     the old Reader stays and the fault is reported (EventRingError).
//   - Inspect. Producer.CheckSegment and Consumer.CheckSegment run
//     shm.Block.Check on the party's own mapping and repair nothing (repairs
//     are for plh-admin check and the shm recovery calls); RingStats returns
//     the counters. ConsumerOptions.RequireChecksum makes a consumer that
//     relies on verification refuse a segment whose checksum policy word was
//     flipped (that word is not covered by the layout checksum).
//
// Dropped objects. Producer and Consumer are thin handles on an inner object that
// the goroutines use; a runtime.AddCleanup on the handle closes the inner object
// when the handle becomes unreachable without Close (so a dropped Consumer still
// sends BYE and deregisters). That happens after a garbage collection, not at
// once: call Close for determinism. A callback that captures the handle keeps it
// reachable.
//
// # Without a broker
//
// "DataHub works without a broker" (backlog B-5). A Messenger given a
// MessengerConfig.DiscoveryDir (DefaultDiscoveryDir: $XDG_RUNTIME_DIR/plh/channels)
// and never connected is a complete client on its own:
//
//   - NewProducer on it runs standalone: no REG_REQ, no heartbeats; the
//     channel is announced by its discovery record, a 0600 JSON file with
//     DISC_ACK's fields plus the producer's pid, start time and host, written
//     by atomic rename into the 0700 directory and removed by Close
//     (docs/protocol.md "Discovery records"). A live producer's record of the
//     same channel refuses it (ErrChannelInUse; the claim is atomic, a hard
//     link). It stays brokerless: a later Connect does not register it. With a broker connected, the
//     producer registers as before and writes its record too, so consumers
//     whose broker is lost can still find it. A Messenger whose broker is lost
//     or still connecting keeps refusing NewProducer (ErrNotConnected): it
//     meant to use a broker, which decides who owns a name.
//   - Discover asks the broker and falls back to the record when the broker
//     cannot answer (ErrNotConnected: none configured, not connected, lost;
//     ErrTimeout) or answers CHANNEL_NOT_FOUND; records of dead producers
//     (by pid and start time) are ignored and removed. Connect and the producer-restart
//     follower use it, so a consumer finds a standalone producer and follows
//     its successor (a new record) as it would through the broker. Without a
//     broker it sends no CONSUMER_REG_REQ.
//   - The peer link carries everything else: HELLO/credit, data, CURVE (the
//     producer's key is in the record), peer heartbeats. A dead consumer is
//     dropped by the producer after PeerTimeout (OnConsumerDied, reason
//     ReasonPeerTimeout), a dead producer noticed by OnProducerLost after
//     ProducerLostAfter; there are no broker notifications
//     (CHANNEL_CLOSING_NOTIFY, CONSUMER_DIED_NOTIFY from /proc).
//
// # Structure remapping
//
// Producer.Remap (B-19) moves the channel to a new segment with another
// layout, named <channel>.remap-<generation>: it creates the segment, holds
// ringWriter.layoutMu exclusively (every write transaction holds it shared, so
// none runs and the old ring's last commit is final), sends REMAP_REQ with the
// old ring's final sequence, swaps ringWriter.block, closes the old segment
// (its name is unlinked) and waits, writes still paused, until as many readers
// registered on the new ring as on the old one (at most
// RemapOptions.AttachWait). The broker tells every party (CHANNEL_EVENT_NOTIFY
// "remap"). A Consumer's follower discovers the new layout and the ring reader
// opens it at once (its Reader registered before anything is written there);
// Latest_only readers move to it at once, ordered readers once a single
// attempt on the old ring found nothing left: their waits on the old ring are
// ended (the attachment's ringGen cancelled) and runRead moves them after the
// transaction (ringReader.replaceAttach, the step a producer restart uses).
// Remaps in a row queue up (each new attachment may have its own target), so
// an ordered reader reads every layout's ring to its end.
// EventRemapped / EventRemapFailed tell the application (ChannelNotice.Remap);
// a layout the Consumer's expectations refuse is told at once and leaves it
// without shared memory once the old ring is read.
// A consumer joining mid-remap re-checks the generation after Connect.
// ringReader.moveMu serialises the steps of a move (taken before mu).
//
// Managed wrappers (ManagedProducer, ManagedConsumer; api.md §6) hold options
// and create/start the object on Start and stop/close it on Stop, for
// applications with their own start-up orchestration.
package hub
