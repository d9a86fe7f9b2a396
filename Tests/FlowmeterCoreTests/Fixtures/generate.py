#!/usr/bin/env python3
"""Generates Flowmeter's own decoder fixtures and their EXPECTED.json.

Run from anywhere: python3 Tests/FlowmeterCoreTests/Fixtures/generate.py
The file format is the one of ../shared/dapr/fixtures (WIRE-FORMAT.md §14) with four optional extensions:
  "headers" may be a list of [name, value] pairs (to express duplicates and order),
  "value_base64" gives a value that is not UTF-8 text,
  "timestamp_type" is createTime (default), logAppendTime or unknown,
  "options" sets decoder options: max_parse_bytes, namespace_prefix, outbox_internal_topics, dlq_topics.
EXPECTED.json uses the vocabulary of the shared EXPECTED.json; here "flags" is the exact flag set.
"""
import base64
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def go_json(obj):
    """Go encoding/json of a map: sorted keys, compact, <>& and U+2028/9 escaped, raw UTF-8."""
    s = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        s = s.replace(a, b)
    return s


def tp(trace, parent, flags="01"):
    return f"00-{trace}-{parent}-{flags}"


def envelope(data=None, data_base64=None, ct="application/json", id_="", source="frontend", time="",
             topic="", trace="", tracestate="", type_="com.dapr.event.sent", **extra):
    env = {"datacontenttype": ct, "id": id_, "pubsubname": "pubsub", "source": source, "specversion": "1.0",
           "time": time, "topic": topic, "traceid": trace, "traceparent": trace, "tracestate": tracestate,
           "type": type_}
    if data is not None:
        env["data"] = data
    if data_base64 is not None:
        env["data_base64"] = data_base64
    env.update(extra)
    return env


fixtures = {}
expected = {}


def add(name, record, exp):
    fixtures[name] = record
    value = record.get("value")
    if "value_base64" in record:
        exp.setdefault("value_bytes", len(base64.b64decode(record["value_base64"])))
    elif value is not None:
        exp.setdefault("value_bytes", len(value.encode("utf-8")))
    else:
        exp.setdefault("value_bytes", None)
    exp.setdefault("flags", [])
    expected[name] = exp


def rec(topic, value, headers=None, key=None, ts=1762161124318, partition=0, **more):
    r = {"topic": topic, "partition": partition, "key": key, "headers": headers if headers is not None else {},
         "timestamp_ms": ts, "value": value}
    r.update(more)
    return r


T1, P1 = "3a67bbaea487df117c61ad9907c039dd", "7c50d72ba1e1830a"

# p01: standard Dapr-wrapped JSON with partitionKey.
add("p01-normal-json.json",
    rec("learning.requested",
        go_json(envelope(data={"courseId": "py-fundamentals", "learnerId": "learner-1", "sessionId": "sess-1"},
                         id_="11111111-4ed3-4fbc-bbe9-068d40ce0126", time="2025-11-03T09:12:04Z",
                         topic="learning.requested", trace=tp(T1, P1))),
        headers={"partitionKey": "learner-1"}, key="learner-1", ts=1762161124318),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL",
     "id": "11111111-4ed3-4fbc-bbe9-068d40ce0126", "trace_id": T1, "parent_span_id": P1, "sampled": True,
     "trace_source": "attribute:traceparent", "ce_time": "2025-11-03T09:12:04Z", "ce_time_precision": "seconds",
     "source": "frontend", "type": "com.dapr.event.sent", "specversion": "1.0", "data_kind": "json",
     "extract": {"sessionId": "sess-1"}})

# p02: Python SDK default: text/plain, data is a JSON string holding JSON.
inner = json.dumps({"learnerId": "learner-2", "percentComplete": 42, "note": "a<b"})
add("p02-text-payload-double-encoded.json",
    rec("progress.updated",
        go_json(envelope(data=inner, ct="text/plain", id_="22222222-b99e-41f9-b0c9-94df95251783",
                         source="progress-agent", time="2025-11-03T09:13:51Z", topic="progress.updated",
                         trace=tp("8c040545094f7f0582030e38903d3cfa", "64b3fffe9c913460"))),
        ts=1762161231902),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL",
     "trace_id": "8c040545094f7f0582030e38903d3cfa", "data_kind": "string", "flags": ["double_encoded_json"],
     "extract": {"learnerId": "learner-2", "percentComplete": "42", "note": "a<b"}})

# p03: application/octet-stream -> data_base64.
payload = bytes(range(82))
add("p03-binary-data-base64.json",
    rec("exercise.submitted",
        go_json(envelope(data_base64=base64.b64encode(payload).decode(), ct="application/octet-stream",
                         id_="33333333-1e5d-4415-9355-d22d1d72d659", time="2025-11-03T09:14:30Z",
                         topic="exercise.submitted",
                         trace=tp("67c71f0e07f900fdb9f34560fc1ffb12", "c7f9f4175054348a"))),
        headers={"partitionKey": "learner-3", "submissionFormat": "gzip"}, key="learner-3", ts=1762161270077),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "data_kind": "base64",
     "decoded_bytes": 82, "trace_id": "67c71f0e07f900fdb9f34560fc1ffb12"})

# p04: rawPayload over gRPC: plain JSON object, traceid header.
add("p04-raw-payload.json",
    rec("progress.updated", json.dumps({"learnerId": "learner-4", "percentComplete": 57}),
        headers={"partitionKey": "learner-4", "rawPayload": "true",
                 "traceid": tp("70dd859248220cb095c81f1429f24a8a", "b34f81294034086d"), "tracestate": ""},
        key="learner-4", ts=1762161298640),
    {"parser_class": "RAW", "role": "NORMAL", "id": None, "ce_time": None,
     "trace_id": "70dd859248220cb095c81f1429f24a8a", "trace_source": "header:traceid",
     "flags": ["raw_header"], "invalid_reason": "missing_specversion"})

# p05: app CloudEvent passthrough with µs time and an extension.
add("p05-app-cloudevent.json",
    rec("course.completed",
        go_json(envelope(data={"courseId": "py", "finalScore": 0.92}, id_="cc-5d0b6c1e", source="/learnflow/progress-agent",
                         time="2025-11-03T09:31:02.187431Z", topic="course.completed",
                         trace=tp("6e774649fd4524b0d96256c2783421ad", "1502e795f9594955"),
                         type_="io.learnflow.course.completed", subject="learner-5", learnerid="learner-5")),
        ts=1762162262512),
    {"parser_class": "CLOUDEVENT", "producer_kind": "app_cloudevent", "role": "NORMAL", "id": "cc-5d0b6c1e",
     "ce_time": "2025-11-03T09:31:02.187431Z", "ce_time_precision": "microseconds",
     "source": "/learnflow/progress-agent", "type": "io.learnflow.course.completed",
     "trace_id": "6e774649fd4524b0d96256c2783421ad", "extract": {"finalScore": "0.92"}})

# p06 / p07: original with \u003c, and its DLQ copy.
v06 = go_json(envelope(data={"attempt": 2, "code": "print(i < 2)\n", "submissionId": "sub-6"},
                       id_="66666666-e496-4c46-8b11-dbc842039696", time="2025-11-03T09:20:11Z",
                       topic="exercise.submitted", trace=tp("fd8f418d3bdf5c4b1f0d488496515107", "d4fce166d29cf348")))
assert "\\u003c" in v06
add("p06-original.json",
    rec("exercise.submitted", v06, headers={"partitionKey": "learner-6"}, key="learner-6", partition=4,
        ts=1762161611845),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL",
     "id": "66666666-e496-4c46-8b11-dbc842039696", "trace_id": "fd8f418d3bdf5c4b1f0d488496515107",
     "extract": {"code": "print(i < 2)\n", "submissionId": "sub-6", "attempt": "2"}})
add("p07-dlq-copy.json",
    rec("exercise.submitted.dlq", v06,
        headers={"partitionKey": "learner-6", "__key": "learner-6", "__offset": "15544", "__partition": "4",
                 "__timestamp": "1762161611845", "__topic": "exercise.submitted", "pubsubName": "pubsub"},
        key="learner-6", partition=4, ts=1762161662818),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "DLQ",
     "id": "66666666-e496-4c46-8b11-dbc842039696", "origin_topic": "exercise.submitted", "origin_partition": 4,
     "origin_offset": 15544, "origin_timestamp_ms": 1762161611845, "time_to_dlq_ms": 50973,
     "probable_reason": "unknown"})

# p08: non-Dapr structured CloudEvent without time or trace.
add("p08-missing-time-non-dapr.json",
    rec("progress.updated",
        json.dumps({"specversion": "1.0", "id": "imp-1", "source": "urn:importer", "type": "io.imported",
                    "datacontenttype": "application/json", "data": {"percentComplete": 100}}),
        headers={"content-type": "application/cloudevents+json; charset=UTF-8"}, ts=1762162800003),
    {"parser_class": "CLOUDEVENT", "producer_kind": "non_dapr", "role": "NORMAL", "id": "imp-1", "ce_time": None,
     "trace_id": None, "flags": ["missing_time"]})

# p08b: "time": null kept by passthrough.
e = envelope(data={"x": 1}, id_="cc-77aa", source="/learnflow/progress-agent", topic="course.completed",
             trace=tp("9308f3ec3e5eee01b5afa5bfb0be9048", "483f1744da5cdb59"), type_="io.learnflow.course.completed")
e["time"] = None
add("p08b-null-time.json", rec("course.completed", go_json(e), ts=1762162877220),
    {"parser_class": "CLOUDEVENT", "producer_kind": "app_cloudevent", "role": "NORMAL", "ce_time": None,
     "trace_id": "9308f3ec3e5eee01b5afa5bfb0be9048", "flags": ["null_time"]})

# p09: truncated JSON.
TRUNCATED = '{"data":{"exerciseId":"ex-1","code":"for i in range('
add("p09-malformed.json", rec("exercise.submitted", TRUNCATED),
    {"parser_class": "MALFORMED", "role": "NORMAL", "parse_error": f"unexpected end of input at byte {len(TRUNCATED)}",
     "invalid_reason": "malformed_json"})

# p10: specversion 0.3.
add("p10-wrong-specversion.json",
    rec("progress.updated",
        go_json(envelope(data={"p": 15}, id_="pu-3391", source="/legacy", time="2025-11-03T09:46:12Z",
                         topic="progress.updated", trace=tp("2d72cc9121cbcd1badffe77fe82a3e97", "b632bad56f0b01f7"),
                         type_="progress.updated.v0", schemaurl="https://schemas.example/v0.json") | {"specversion": "0.3"}),
        ts=1762163172774),
    {"parser_class": "CLOUDEVENT", "producer_kind": "app_cloudevent", "role": "NORMAL", "specversion": "0.3",
     "flags": ["unsupported_specversion"], "invalid_reason": "unsupported_specversion",
     "trace_id": "2d72cc9121cbcd1badffe77fe82a3e97"})

# p11: oversize (the limit is lowered to 1024 bytes so the fixture stays small).
big = go_json(envelope(data={"markdown": "## Lektion & mehr\n" * 200}, id_="aac2e9dc-5760-467b-aa8b-f8d01c2fa688",
                       source="content-agent", time="2025-11-03T09:50:40Z", topic="course.content.generated",
                       trace=tp("5bde7e8abdc8893f7de15a6ba2edf3d3", "ab9b6ed9beb744f3")))
add("p11-oversize.json",
    rec("course.content.generated", big, ts=1762163440100, options={"max_parse_bytes": 1024}),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "flags": ["oversize"],
     "id": "aac2e9dc-5760-467b-aa8b-f8d01c2fa688", "trace_id": "5bde7e8abdc8893f7de15a6ba2edf3d3",
     "ce_time": "2025-11-03T09:50:40Z", "source": "content-agent", "data_kind": "json"})

# p12 / p13: chain hops with the same trace id.
TC = "a4b5f30c516a41fce37ab8d401ea7cf3"
add("p12-chain-hop1.json",
    rec("learning.requested",
        go_json(envelope(data={"requestId": "req-1"}, id_="47cd6ef0-463e-417b-9d21-006b8015ed8b",
                         time="2025-11-03T10:02:17Z", topic="learning.requested", trace=tp(TC, "7f85cc6963048ed2"))),
        headers={"partitionKey": "l", "correlationId": "req-1"}, key="l", ts=1762164137051),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "trace_id": TC,
     "parent_span_id": "7f85cc6963048ed2"})
add("p13-chain-hop2.json",
    rec("exercise.requested",
        go_json(envelope(data={"causationId": "47cd6ef0-463e-417b-9d21-006b8015ed8b", "count": 3},
                         id_="c2eb6793-2b90-47de-9e4d-302cb8b884be", source="course-agent",
                         time="2025-11-03T10:02:19Z", topic="exercise.requested", trace=tp(TC, "32624f0b6ea4d894"))),
        headers={"partitionKey": "l", "correlationId": "req-1"}, key="l", ts=1762164139437),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "trace_id": TC,
     "parent_span_id": "32624f0b6ea4d894",
     "extract": {"causationId": "47cd6ef0-463e-417b-9d21-006b8015ed8b", "count": "3"}})

# p15: cloudevent.type / cloudevent.subject overrides, ttlInSeconds -> expiration, no tracing (empty strings).
add("p15-overrides-ttl-no-tracing.json",
    rec("course.completed",
        go_json(envelope(data={"courseId": "py"}, id_="15151515-4ed3-4fbc-bbe9-068d40ce0126", source="progress-agent",
                         time="2025-11-03T11:00:00Z", topic="course.completed", trace="",
                         type_="io.learnflow.course.completed", subject="learner-15",
                         expiration="2025-11-03T11:01:00Z")),
        headers={"cloudevent.type": "io.learnflow.course.completed", "cloudevent.subject": "learner-15",
                 "ttlInSeconds": "60"}, ts=1762167600120),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "trace_id": None,
     "type": "io.learnflow.course.completed", "subject": "learner-15", "ce_time": "2025-11-03T11:00:00Z"})

# p15b: the same kind of event dead-lettered after its expiration.
add("p15b-dlq-expired.json",
    rec("course.completed.dlq",
        go_json(envelope(data={"courseId": "py"}, id_="15151515-aaaa-4fbc-bbe9-068d40ce0126", source="progress-agent",
                         time="2025-11-03T11:00:00Z", topic="course.completed", trace="",
                         expiration="2025-11-03T11:01:00Z")),
        headers={"ttlInSeconds": "60", "__offset": "77", "__partition": "1", "__timestamp": "1762167600120",
                 "__topic": "course.completed", "pubsubName": "pubsub"}, ts=1762167700000),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "DLQ", "flags": ["expired"],
     "origin_topic": "course.completed", "origin_partition": 1, "origin_offset": 77,
     "origin_timestamp_ms": 1762167600120, "time_to_dlq_ms": 99880, "probable_reason": "expired"})

# p16: self-hosted daprd with a +01:00 local zone, charset content type, unsampled flags 00.
add("p16-self-hosted-local-offset.json",
    rec("learning.requested",
        go_json(envelope(data={"goal": "x"}, ct="application/json; charset=utf-8",
                         id_="16161616-4ed3-4fbc-bbe9-068d40ce0126", time="2025-11-03T10:12:04+01:00",
                         topic="learning.requested", trace=tp("1616bbaea487df117c61ad9907c039dd", "1616d72ba1e1830a", "00"))),
        ts=1762161124500),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL",
     "ce_time": "2025-11-03T09:12:04Z", "ce_time_precision": "seconds", "sampled": False,
     "trace_id": "1616bbaea487df117c61ad9907c039dd", "datacontenttype": "application/json; charset=utf-8"})

# p17 / p18: outbox internal and final records.
outbox = envelope(data={"progress": 3}, id_="outbox-18181818-4ed3-4fbc-bbe9-068d40ce0126", source="progress-agent",
                  time="2025-11-03T12:00:00Z", topic="", trace="", contentType="application/json")
outbox["traceid"] = tp("17171717a487df117c61ad9907c039dd", "1717d72ba1e1830a")
outbox["pubsubname"] = ""
add("p17-outbox-internal.json",
    rec("progress-agentprogress.updatedoutbox", go_json(outbox), headers={}, ts=1762171200050),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_outbox", "role": "OUTBOX_INTERNAL",
     "id": "outbox-18181818-4ed3-4fbc-bbe9-068d40ce0126", "trace_id": "17171717a487df117c61ad9907c039dd",
     "trace_source": "attribute:traceid", "outbox_internal": True})
final = dict(outbox, topic="progress.updated", pubsubname="pubsub")
add("p18-outbox-final.json",
    rec("progress.updated", go_json(final), headers={}, ts=1762171201300),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_outbox", "role": "NORMAL",
     "id": "outbox-18181818-4ed3-4fbc-bbe9-068d40ce0126", "trace_id": "17171717a487df117c61ad9907c039dd",
     "trace_source": "attribute:traceid", "outbox_internal": False})

# p19: tombstone.
add("p19-tombstone.json", rec("progress.updated", None, headers={"rawPayload": "true"}),
    {"parser_class": "TOMBSTONE", "role": "NORMAL", "invalid_reason": "tombstone"})

# p20: binary-mode CloudEvent (ce_* headers), non-Dapr.
add("p20-binary-mode.json",
    rec("progress.updated", json.dumps({"percentComplete": 20}),
        headers={"ce_specversion": "1.0", "ce_id": "bin-20", "ce_source": "urn:connect", "ce_type": "io.bin",
                 "ce_time": "2025-11-03T12:30:00.5Z",
                 "ce_traceparent": tp("20202020a487df117c61ad9907c039dd", "2020d72ba1e1830a"),
                 "content-type": "application/json"}, ts=1762173000600),
    {"parser_class": "BINARY_CE", "producer_kind": "non_dapr", "role": "NORMAL", "id": "bin-20",
     "source": "urn:connect", "type": "io.bin", "ce_time": "2025-11-03T12:30:00.5Z", "ce_time_precision": "milliseconds",
     "trace_id": "20202020a487df117c61ad9907c039dd", "trace_source": "header:ce_traceparent", "data_kind": "json"})

# p21: DLQ copy with URL-escaped __* headers (escapeHeaders=true); synthetic escapes to exercise decoding.
add("p21-dlq-escaped-headers.json",
    rec("exercise.submitted.dlq.progress-agent", v06,
        headers={"__offset": "%31%35%35%34%34", "__partition": "4", "__timestamp": "1762161611845",
                 "__topic": "exercise%2Esubmitted", "pubsubName": "pubsub", "correlationId": "req+1%2F2"},
        partition=1, ts=1762161662818),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "DLQ", "flags": ["escaped_dlq_headers"],
     "origin_topic": "exercise.submitted", "origin_partition": 4, "origin_offset": 15544,
     "origin_timestamp_ms": 1762161611845, "time_to_dlq_ms": 50973})

# p22: DLQ copy of a malformed value.
add("p22-dlq-malformed.json",
    rec("exercise.submitted.dlq", TRUNCATED,
        headers={"__offset": "15602", "__partition": "4", "__timestamp": "1762163071509",
                 "__topic": "exercise.submitted", "pubsubName": "pubsub"}, ts=1762163072000),
    {"parser_class": "MALFORMED", "role": "DLQ", "origin_topic": "exercise.submitted", "origin_offset": 15602,
     "origin_partition": 4, "origin_timestamp_ms": 1762163071509, "time_to_dlq_ms": 491,
     "invalid_reason": "malformed_json", "parse_error": f"unexpected end of input at byte {len(TRUNCATED)}"})

# p23: rawPayload with non-JSON (and non-UTF-8) bytes; trace from the traceparent header.
raw = bytes([0x00, 0x00, 0x00, 0x00, 0x2A, 0xFF, 0xFE, 0x10, 0x80])
add("p23-raw-non-json.json",
    rec("telemetry.raw", None, headers={"rawPayload": "true",
                                          "traceparent": tp("23232323a487df117c61ad9907c039dd", "2323d72ba1e1830a")},
        value_base64=base64.b64encode(raw).decode()),
    {"parser_class": "RAW", "role": "NORMAL", "flags": ["raw_header"], "invalid_reason": "raw_non_json",
     "trace_id": "23232323a487df117c61ad9907c039dd", "trace_source": "header:traceparent",
     "parse_error": "unexpected byte 0x00 at byte 0"})

# p24: valid JSON that is not an object.
add("p24-non-object-json.json", rec("progress.updated", '[1, 2, {"a": null}]'),
    {"parser_class": "RAW", "role": "NORMAL", "flags": ["non_object_json"], "invalid_reason": "non_object_json"})

# p25: a CloudEvent preceded by a UTF-8 BOM (as value_base64: Foundation's JSON reader drops a leading U+FEFF).
add("p25-bom.json",
    rec("progress.updated", None, value_base64=base64.b64encode(
        "\ufeff".encode() + json.dumps({"specversion": "1.0", "id": "bom-1", "source": "s", "type": "t",
                                        "time": "2025-11-03T12:00:00Z"}).encode()).decode()),
    {"parser_class": "CLOUDEVENT", "producer_kind": "non_dapr", "role": "NORMAL", "id": "bom-1",
     "flags": ["bom"]})

# p26: duplicate header names (last wins).
add("p26-duplicate-headers.json",
    rec("learning.requested",
        go_json(envelope(data={"a": 1}, id_="26", time="2025-11-03T09:12:04Z", topic="learning.requested",
                         trace="")),
        headers=[["partitionKey", "a"], ["traceparent", "garbage"],
                 ["traceparent", tp("26262626a487df117c61ad9907c039dd", "2626d72ba1e1830a")], ["partitionKey", "b"]],
        ts=1762161125000),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "flags": ["duplicate_header"],
     "trace_id": "26262626a487df117c61ad9907c039dd", "trace_source": "header:traceparent"})

# p27: an attribute of the wrong JSON type ("id": 5).
add("p27-wrong-type-id.json",
    rec("learning.requested",
        go_json(envelope(data={"a": 1}, time="2025-11-03T09:12:04Z", topic="learning.requested", trace="") | {"id": 5}),
        ts=1762161125000),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "id": None,
     "flags": ["missing_id", "wrong_type"], "invalid_reason": "missing_id"})

# p28: data and data_base64 both present; URL-safe, unpadded base64.
add("p28-both-data.json",
    rec("learning.requested",
        go_json(envelope(data={"a": 1}, data_base64="-_-_AA", id_="28", time="2025-11-03T09:12:04Z",
                         topic="learning.requested", trace="")), ts=1762161125000),
    {"parser_class": "CLOUDEVENT", "producer_kind": "app_cloudevent", "role": "NORMAL", "data_kind": "base64",
     "decoded_bytes": 4, "flags": ["both_data", "urlsafe_base64"]})

# p29: specversion 1.0.2, lenient time (space, +hhmm), bad base64.
add("p29-minor-version-lenient-time.json",
    rec("learning.requested",
        go_json(envelope(data_base64="abc$", ct="application/octet-stream", id_="29", time="2025-11-03 10:12:04.25+0100",
                         topic="learning.requested", trace="") | {"specversion": "1.0.2"}), ts=1762161124300),
    {"parser_class": "CLOUDEVENT", "producer_kind": "app_cloudevent", "role": "NORMAL", "specversion": "1.0.2",
     "ce_time": "2025-11-03T09:12:04.25Z", "ce_time_precision": "milliseconds", "data_kind": "base64",
     "flags": ["specversion_minor", "lenient_time", "bad_base64"]})

# p30: duplicate top-level member (last wins); invalid time text.
add("p30-duplicate-member.json",
    rec("progress.updated",
        '{"specversion":"1.0","id":"first","source":"s","type":"t","time":"yesterday","id":"second",'
        '"topic":"progress.updated","pubsubname":"pubsub","x":1,"x":2}'),
    {"parser_class": "CLOUDEVENT", "producer_kind": "app_cloudevent", "role": "NORMAL", "id": "second",
     "flags": ["duplicate_member", "invalid_time"]})

# p31: uppercase hex in traceparent is invalid.
add("p31-bad-traceparent.json",
    rec("learning.requested",
        go_json(envelope(data={"a": 1}, id_="31", time="2025-11-03T09:12:04Z", topic="learning.requested",
                         trace=tp("3A67BBAEA487DF117C61AD9907C039DD", "7C50D72BA1E1830A"))), ts=1762161125000),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "trace_id": None,
     "flags": ["bad_traceparent"]})

# p32 / p32b: time far after the record timestamp (skew), and far before it (delayed publish).
add("p32-clock-skew.json",
    rec("learning.requested",
        go_json(envelope(data={"a": 1}, id_="32", time="2025-11-03T09:12:14Z", topic="learning.requested", trace="")),
        ts=1762161124318),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL",
     "flags": ["clock_skew_or_forged_time"]})
add("p32b-delayed-publish.json",
    rec("learning.requested",
        go_json(envelope(data={"a": 1}, id_="32b", time="2025-11-03T09:10:04Z", topic="learning.requested", trace="")),
        ts=1762161124318),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "flags": ["delayed_publish"]})

# p33 / p33b: a namespaced topic: stripped with the option, a mismatch without it.
ns_value = go_json(envelope(data={"a": 1}, id_="33", time="2025-11-03T09:12:04Z", topic="learning.requested",
                            trace=""))
add("p33-namespace-prefix.json",
    rec("learnflowlearning.requested", ns_value, ts=1762161124318, options={"namespace_prefix": "learnflow"}),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL"})
add("p33b-topic-mismatch.json", rec("learnflowlearning.requested", ns_value, ts=1762161124318),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "NORMAL", "flags": ["topic_mismatch"]})

# p34: a JSON object without specversion and without rawPayload.
add("p34-object-without-specversion.json", rec("progress.updated", '{"learnerId":"x"}'),
    {"parser_class": "RAW", "role": "NORMAL", "invalid_reason": "missing_specversion"})

# p35: an empty value.
add("p35-empty-value.json", rec("progress.updated", ""),
    {"parser_class": "MALFORMED", "role": "NORMAL", "invalid_reason": "malformed_json",
     "parse_error": "unexpected end of input at byte 0"})

# p36: ce_specversion header but structured content type: parsed as structured.
add("p36-structured-with-ce-header.json",
    rec("progress.updated", json.dumps({"specversion": "1.0", "id": "s36", "source": "s", "type": "t"}),
        headers={"ce_specversion": "1.0", "content-type": "application/cloudevents+json"}),
    {"parser_class": "CLOUDEVENT", "producer_kind": "non_dapr", "role": "NORMAL", "id": "s36",
     "flags": ["missing_time"]})

# p37: nesting deeper than the limit.
add("p37-too-deep.json", rec("progress.updated", '{"data":' + "[" * 600 + "]" * 600 + "}"),
    {"parser_class": "MALFORMED", "role": "NORMAL", "invalid_reason": "malformed_json",
     "parse_error": "nesting deeper than 512 levels at byte 519"})

# p38: outbox internal topic configured by name, DLQ by configured name, leap second.
add("p38-configured-dlq-leap-second.json",
    rec("deadletters",
        go_json(envelope(data={"a": 1}, id_="38", time="2016-12-31T23:59:60Z", topic="learning.requested", trace="")),
        headers={"__partition": "x"}, ts=1483228800000, options={"dlq_topics": ["deadletters"]}),
    {"parser_class": "CLOUDEVENT", "producer_kind": "dapr_wrapped", "role": "DLQ",
     "ce_time": "2016-12-31T23:59:59.999999999Z", "ce_time_precision": "seconds",
     "flags": ["leap_second", "dlq_headers_invalid"], "origin_topic": "learning.requested"})

for name in list(fixtures):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(fixtures[name], f, indent=2, ensure_ascii=False)
        f.write("\n")
with open(os.path.join(HERE, "EXPECTED.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
    f.write("\n")
print(f"wrote {len(fixtures)} fixtures")
