#!/usr/bin/env python3
"""Helpers for scripts/bench-scale.sh: analyzer files, Dapr-exact traffic and consumer-group commits.

    bench-scale.py analyzers-rss FILE TOPICS FLOWS TIMEOUT [PREFIX]
    bench-scale.py analyzers-lag FILE TOPICS GROUPS
    bench-scale.py produce BROKERS --topics N --types N --flows N [--seed-pending N] [--rate R] [--seconds S]
                           [--prefix P]
    bench-scale.py fill BROKERS --topics N --partitions N --per-partition N [--types N] [--prefix P] [--seed N] [--rate R]
    bench-scale.py commit BROKERS --topics N --partitions N --groups N --per-partition N [--prefix P]

Records are written through librdkafka (ctypes, `rd_kafka_produceva`), shaped as Dapr writes them: a
structured CloudEvent in Dapr's member order (compact JSON), the key and a `partitionKey` header from the publish
metadata, and a `cloudevent.type` header, because a type other than `com.dapr.event.sent` is set through that
metadata, which Dapr also copies to the Kafka headers (shared/dapr/WIRE-FORMAT.md 2, 3.2).

Commits use a consumer with the group's id that never joins (`rd_kafka_commit` with explicit offsets, one request
per group): the mock broker accepts such commits for a group that has no members, and it costs no 3 s join.
"""
import ctypes
import random
import sys
import time
import uuid

LIB = ctypes.CDLL("librdkafka.so.1")
LIB.rd_kafka_conf_new.restype = ctypes.c_void_p
LIB.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
LIB.rd_kafka_new.restype = ctypes.c_void_p
LIB.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
LIB.rd_kafka_produceva.restype = ctypes.c_void_p
LIB.rd_kafka_error_string.restype = ctypes.c_char_p
LIB.rd_kafka_error_string.argtypes = [ctypes.c_void_p]
LIB.rd_kafka_error_code.argtypes = [ctypes.c_void_p]
LIB.rd_kafka_error_destroy.argtypes = [ctypes.c_void_p]
LIB.rd_kafka_poll.argtypes = [ctypes.c_void_p, ctypes.c_int]
LIB.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
LIB.rd_kafka_outq_len.argtypes = [ctypes.c_void_p]
LIB.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
LIB.rd_kafka_topic_partition_list_new.restype = ctypes.c_void_p
LIB.rd_kafka_topic_partition_list_new.argtypes = [ctypes.c_int]
LIB.rd_kafka_topic_partition_list_add.restype = ctypes.c_void_p
LIB.rd_kafka_topic_partition_list_add.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32]
LIB.rd_kafka_topic_partition_list_set_offset.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32,
                                                         ctypes.c_int64]
LIB.rd_kafka_topic_partition_list_destroy.argtypes = [ctypes.c_void_p]
LIB.rd_kafka_commit.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
LIB.rd_kafka_err2str.restype = ctypes.c_char_p
LIB.rd_kafka_consumer_close.argtypes = [ctypes.c_void_p]

PRODUCER, CONSUMER = 0, 1
VT_TOPIC, VT_PARTITION, VT_VALUE, VT_KEY, VT_MSGFLAGS, VT_HEADER = 1, 3, 4, 5, 7, 9
MSG_F_COPY = 0x2


class _Mem(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class _Header(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("val", ctypes.c_void_p), ("size", ctypes.c_ssize_t)]


class _U(ctypes.Union):
    _fields_ = [("cstr", ctypes.c_char_p), ("i", ctypes.c_int), ("i32", ctypes.c_int32), ("mem", _Mem),
                ("header", _Header), ("_pad", ctypes.c_char * 64)]


class _VU(ctypes.Structure):
    _fields_ = [("vtype", ctypes.c_int), ("u", _U)]


LIB.rd_kafka_produceva.argtypes = [ctypes.c_void_p, ctypes.POINTER(_VU), ctypes.c_size_t]


def client(kind, brokers, extra=None):
    conf = LIB.rd_kafka_conf_new()
    errstr = ctypes.create_string_buffer(512)
    settings = {"bootstrap.servers": brokers, "log_level": "3"}
    settings.update(extra or {})
    for key, value in settings.items():
        if LIB.rd_kafka_conf_set(conf, key.encode(), value.encode(), errstr, 512) != 0:
            sys.exit("bench-scale.py: %s: %s" % (key, errstr.value.decode()))
    rk = LIB.rd_kafka_new(kind, conf, errstr, 512)
    if not rk:
        sys.exit("bench-scale.py: rd_kafka_new: " + errstr.value.decode())
    return rk


class Producer:
    def __init__(self, brokers):
        self.rk = client(PRODUCER, brokers, {"linger.ms": "20", "queue.buffering.max.messages": "1000000"})
        self.sent = 0

    def send(self, topic, key, value, headers, partition=-1):
        key_b, value_b, topic_b = key.encode(), value.encode(), topic.encode()
        keep = [key_b, value_b, topic_b]
        vus = (_VU * (5 + len(headers)))()
        vus[0].vtype, vus[0].u.cstr = VT_TOPIC, topic_b
        vus[1].vtype, vus[1].u.i32 = VT_PARTITION, partition
        vus[2].vtype, vus[2].u.i = VT_MSGFLAGS, MSG_F_COPY
        vus[3].vtype = VT_KEY
        vus[3].u.mem.ptr, vus[3].u.mem.size = ctypes.cast(ctypes.c_char_p(key_b), ctypes.c_void_p), len(key_b)
        vus[4].vtype = VT_VALUE
        vus[4].u.mem.ptr, vus[4].u.mem.size = ctypes.cast(ctypes.c_char_p(value_b), ctypes.c_void_p), len(value_b)
        index = 5
        for name, val in headers:
            name_b, val_b = name.encode(), val.encode()
            keep += [name_b, val_b]
            vus[index].vtype = VT_HEADER
            vus[index].u.header.name = name_b
            vus[index].u.header.val = ctypes.cast(ctypes.c_char_p(val_b), ctypes.c_void_p)
            vus[index].u.header.size = len(val_b)
            index += 1
        while True:
            error = LIB.rd_kafka_produceva(self.rk, vus, index)
            if not error:
                break
            code = LIB.rd_kafka_error_code(error)
            message = LIB.rd_kafka_error_string(error).decode()
            LIB.rd_kafka_error_destroy(error)
            if code != -184:  # _QUEUE_FULL
                sys.exit("bench-scale.py: produce: " + message)
            LIB.rd_kafka_poll(self.rk, 50)
        self.sent += 1
        if self.sent % 1000 == 0:
            LIB.rd_kafka_poll(self.rk, 0)

    def close(self):
        LIB.rd_kafka_flush(self.rk, 30000)
        left = LIB.rd_kafka_outq_len(self.rk)
        LIB.rd_kafka_destroy(self.rk)
        if left:
            sys.exit("bench-scale.py: %d records not delivered" % left)


def topic_name(prefix, index):
    return "%s.t%02d" % (prefix, index)


def type_name(prefix, topic, index):
    return "io.learnflow.%s.t%02d.e%02d" % (prefix, topic, index)


def cloud_event(rng, topic, ce_type, trace, learner, seq):
    traceparent = "00-%s-%016x-01" % (trace, rng.getrandbits(64))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%06dZ" % (time.time_ns() // 1000 % 1000000)
    data = ('{"attempt":%d,"courseId":"py-fundamentals","learnerId":"%s","requestId":"req-%08x",'
            '"summary":"Comprehensions in practice: generator expressions and list comprehensions"}'
            % (seq % 7, learner, seq))
    return ('{"data":%s,"datacontenttype":"application/json","id":"%s","pubsubname":"pubsub",'
            '"source":"scale-agent","specversion":"1.0","time":"%s","topic":"%s","traceid":"%s",'
            '"traceparent":"%s","tracestate":"","type":"%s"}'
            % (data, uuid.UUID(int=rng.getrandbits(128), version=4), stamp, topic, traceparent, traceparent, ce_type))


def send_event(producer, rng, prefix, topic, type_index, trace, seq, partition=-1):
    name = topic_name(prefix, topic)
    ce_type = type_name(prefix, topic, type_index)
    learner = "learner-%06x" % rng.getrandbits(24)
    value = cloud_event(rng, name, ce_type, trace, learner, seq)
    producer.send(name, learner, value, [("partitionKey", learner), ("cloudevent.type", ce_type)], partition)


def analyzers_rss(path, topics, flows, timeout, prefix="scale"):
    lines = ["# Generated by scripts/bench-scale.py for the RSS scenario of scripts/bench-scale.sh.", "topics:"]
    lines += ["  - %s" % topic_name(prefix, t) for t in range(topics)]
    lines.append("flows:" if flows else "")
    for f in range(flows):
        lines += [
            "  - name: f%02d" % f,
            "    from: %s" % topic_name(prefix, 2 * f),
            "    to: %s" % topic_name(prefix, 2 * f + 1),
            "    from_type: %s" % type_name(prefix, 2 * f, 0),
            "    to_type: %s" % type_name(prefix, 2 * f + 1, 0),
            "    correlation: trace-id",
            "    timeout: %s" % timeout,
        ]
    lines.append("# limits: the defaults (100 types per topic, 100,000 pending flow requests).")
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def analyzers_lag(path, topics, groups, prefix="lag"):
    names = [topic_name(prefix, t) for t in range(topics)]
    lines = ["# Generated by scripts/bench-scale.py for the lag scenario of scripts/bench-scale.sh.", "topics:"]
    lines += ["  - %s" % n for n in names]
    lines.append("groups:")
    for g in range(groups):
        lines += ["  - group: %s-g%02d" % (prefix, g), "    topics: [%s]" % ", ".join(names)]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def option(args, name, default):
    if name in args:
        return args[args.index(name) + 1]
    return default


def produce(brokers, args):
    """Seeds unanswered flow requests, then sends continuous traffic at a fixed rate (records/s)."""
    topics = int(option(args, "--topics", "50"))
    types = int(option(args, "--types", "100"))
    flows = int(option(args, "--flows", "25"))
    seed_pending = int(option(args, "--seed-pending", "0"))
    rate = float(option(args, "--rate", "0"))
    seconds = float(option(args, "--seconds", "0"))
    prefix = option(args, "--prefix", "scale")
    rng = random.Random(0x5CA1E)
    producer = Producer(brokers)
    seq = 0
    # Every (topic, type) once, so all 100 types of every topic exist from the start.
    for t in range(topics):
        for k in range(1, types):
            send_event(producer, rng, prefix, t, k, "%032x" % rng.getrandbits(128), seq)
            seq += 1
    # Requests that are never answered: they stay pending for the flow's timeout.
    for i in range(seed_pending):
        send_event(producer, rng, prefix, 2 * (i % flows), 0, "%032x" % rng.getrandbits(128), seq)
        seq += 1
    producer.close() if rate <= 0 else None
    if rate <= 0:
        print("produced %d records" % seq, flush=True)
        return
    # Continuous traffic: each tick of 100 ms, rate/10 records; one in ten is an answered request/response pair
    # of a flow (the response right after its request), the rest random types 1..types-1 of random topics.
    start = time.monotonic()
    tick = 0
    pairs = 0
    while seconds <= 0 or time.monotonic() - start < seconds:
        tick += 1
        for n in range(int(rate / 10)):
            if n % 10 == 0 and flows > 0:
                f = rng.randrange(flows)
                trace = "%032x" % rng.getrandbits(128)
                send_event(producer, rng, prefix, 2 * f, 0, trace, seq)
                send_event(producer, rng, prefix, 2 * f + 1, 0, trace, seq + 1)
                seq += 2
                pairs += 1
            else:
                send_event(producer, rng, prefix, rng.randrange(topics), 1 + rng.randrange(types - 1),
                           "%032x" % rng.getrandbits(128), seq)
                seq += 1
        LIB.rd_kafka_poll(producer.rk, 0)
        delay = start + tick * 0.1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if tick % 600 == 0:
            print("producer: %d records in %.0f s (%.0f/s), %d answered pairs"
                  % (seq, time.monotonic() - start, seq / (time.monotonic() - start), pairs), flush=True)
    producer.close()
    print("produced %d records" % seq, flush=True)


def fill(brokers, args):
    """Writes PER records into every partition of TOPICS topics (types spread over the records)."""
    topics = int(option(args, "--topics", "10"))
    partitions = int(option(args, "--partitions", "100"))
    per = int(option(args, "--per-partition", "10"))
    types = int(option(args, "--types", "100"))
    prefix = option(args, "--prefix", "lag")
    rng = random.Random(int(option(args, "--seed", "422")))
    rate = float(option(args, "--rate", "0"))
    producer = Producer(brokers)
    seq = 0
    start = time.monotonic()
    # Round robin over the partitions, so that a paced fill keeps every partition at the same height.
    for n in range(per):
        for t in range(topics):
            for p in range(partitions):
                send_event(producer, rng, prefix, t, seq % types, "%032x" % rng.getrandbits(128), seq, p)
                seq += 1
                if rate > 0 and seq % 100 == 0:
                    LIB.rd_kafka_poll(producer.rk, 0)
                    delay = start + seq / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
    producer.close()
    print("produced %d records" % seq, flush=True)


def commit(brokers, args):
    """Commits, for every group g, offset (g mod PER) on every partition: lag PER - (g mod PER) each."""
    topics = int(option(args, "--topics", "10"))
    partitions = int(option(args, "--partitions", "100"))
    groups = int(option(args, "--groups", "20"))
    per = int(option(args, "--per-partition", "10"))
    prefix = option(args, "--prefix", "lag")
    started = time.monotonic()
    for g in range(groups):
        group = "%s-g%02d" % (prefix, g)
        rk = client(CONSUMER, brokers, {"group.id": group, "enable.auto.commit": "false"})
        offsets = LIB.rd_kafka_topic_partition_list_new(topics * partitions)
        for t in range(topics):
            for p in range(partitions):
                name = topic_name(prefix, t).encode()
                LIB.rd_kafka_topic_partition_list_add(offsets, name, p)
                LIB.rd_kafka_topic_partition_list_set_offset(offsets, name, p, g % per)
        err = LIB.rd_kafka_commit(rk, offsets, 0)
        LIB.rd_kafka_topic_partition_list_destroy(offsets)
        LIB.rd_kafka_consumer_close(rk)
        LIB.rd_kafka_destroy(rk)
        if err != 0:
            sys.exit("bench-scale.py: commit for %s: %s" % (group, LIB.rd_kafka_err2str(err).decode()))
    print("committed %d groups x %d partitions in %.1f s" % (groups, topics * partitions, time.monotonic() - started),
          flush=True)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    command = args[0]
    if command == "analyzers-rss":
        analyzers_rss(args[1], int(args[2]), int(args[3]), args[4], *args[5:6])
    elif command == "analyzers-lag":
        analyzers_lag(args[1], int(args[2]), int(args[3]))
    elif command == "produce":
        produce(args[1], args[2:])
    elif command == "fill":
        fill(args[1], args[2:])
    elif command == "commit":
        commit(args[1], args[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
