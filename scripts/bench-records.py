#!/usr/bin/env python3
"""Writes LearnFlow Dapr records for `kcat -P -K '\\t' -l FILE`: one file per topic, lines `key<TAB>value`.

    scripts/bench-records.py DIR COUNT

COUNT records in total, spread evenly over the six LearnFlow topics, shaped like the benchmark corpus
(Benchmarks/Sources/BenchmarkCorpus): compact structured CloudEvents in Dapr's member order, about 600 bytes,
requests and responses of the three LearnFlow flows sharing a W3C trace id. Deterministic.
"""
import os
import random
import sys
import time

TOPICS = [
    "learning.requested", "lesson.generated", "exercise.submitted",
    "exercise.graded", "progress.updated", "course.completed",
]
COURSES = ["py-fundamentals", "js-async", "go-concurrency", "sql-joins"]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench-records.py DIR COUNT")
    out_dir, count = sys.argv[1], int(sys.argv[2])
    rng = random.Random(0x5EED)
    files = {t: open(os.path.join(out_dir, t + ".records"), "w", encoding="utf-8", newline="\n") for t in TOPICS}
    start = int(time.time()) - 3600
    h = lambda bits, digits: format(rng.getrandbits(bits), "0%dx" % digits)
    for index in range(count):
        topic = TOPICS[index % 6]
        chain = random.Random(index // 6)
        trace = format(chain.getrandbits(128), "032x")
        traceparent = "00-%s-%s-01" % (trace, h(64, 16))
        learner = "learner-" + h(24, 6)
        course = COURSES[rng.randrange(4)]
        request = "req-" + h(24, 6)
        seconds = start + index // 500
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
        if topic == "learning.requested":
            source = "frontend"
            data = ('{"courseId":"%s","goal":"Understand list comprehensions and generator expressions",'
                    '"learnerId":"%s","level":"beginner","locale":"de-DE","requestId":"%s","sessionId":"sess-%s"}'
                    % (course, learner, request, h(24, 6)))
        elif topic == "lesson.generated":
            source = "course-agent"
            data = ('{"courseId":"%s","learnerId":"%s","lessonId":"lsn-%s","requestId":"%s",'
                    '"sections":["intro","syntax","examples","pitfalls"],"title":"Comprehensions in practice",'
                    '"tokens":1834}' % (course, learner, h(32, 8), request))
        elif topic == "exercise.submitted":
            source = "frontend"
            data = ('{"attempt":%d,"code":"for i in range(3):\\n    print(i \\u003c 2 and \\"small\\" or \\"big\\")\\n",'
                    '"exerciseId":"ex-%s-%d","language":"python","learnerId":"%s"}'
                    % (rng.randrange(4) + 1, course, rng.randrange(40), learner))
        elif topic == "exercise.graded":
            source = "exercise-agent"
            data = ('{"exerciseId":"ex-%s-%d","feedback":"Correct output; consider a conditional expression '
                    'instead of and/or.","learnerId":"%s","passed":true,"score":0.%d}'
                    % (course, rng.randrange(40), learner, rng.randrange(10, 100)))
        elif topic == "progress.updated":
            source = "progress-agent"
            data = ('{"completedModules":%d,"courseId":"%s","learnerId":"%s","percent":%d,"streakDays":%d,'
                    '"updatedModules":["m1","m2","m3"]}'
                    % (rng.randrange(8), course, learner, rng.randrange(100), rng.randrange(30)))
        else:
            source = "progress-agent"
            data = ('{"courseId":"%s","durationMinutes":%d,"finalScore":0.92,"learnerId":"%s","modulesCompleted":8,'
                    '"certificate":"cert-%s"}' % (course, rng.randrange(400), learner, h(40, 10)))
        ident = "%s-%s-4%s-a%s-%s" % (h(32, 8), h(16, 4), h(12, 3), h(12, 3), h(48, 12))
        value = ('{"data":%s,"datacontenttype":"application/json","id":"%s","pubsubname":"pubsub","source":"%s",'
                 '"specversion":"1.0","time":"%s","topic":"%s","traceid":"%s","traceparent":"%s","tracestate":"",'
                 '"type":"com.dapr.event.sent"}' % (data, ident, source, stamp, topic, traceparent, traceparent))
        files[topic].write(learner + "\t" + value + "\n")
    for f in files.values():
        f.close()


if __name__ == "__main__":
    main()
