extension AnalyzerLoader {
    /// The LearnFlow analyzer set built into the binary, used when there is no `./analyzers` folder.
    ///
    /// - Important: This is the text of `analyzers/learnflow.yaml`, byte for byte; a test keeps the two identical.
    ///   Edit the file, then copy it here.
    public static let builtInLearnFlow = #"""
        # LearnFlow's Dapr pub/sub traffic: the analyzer definitions Flowmeter uses by default.
        # The same text is built into the binary and used when there is no ./analyzers folder.
        # Every key, type and default: analyzers/README.md.

        # The six LearnFlow topics (publisher -> consumer groups, i.e. Dapr app-ids).
        topics:
          - learning.requested   # frontend -> course-agent
          - lesson.generated     # course-agent -> frontend
          - exercise.submitted   # frontend -> exercise-agent
          - exercise.graded      # exercise-agent -> progress-agent, frontend
          - progress.updated     # progress-agent -> frontend
          - course.completed     # progress-agent -> course-agent

        # Dapr dead-letters per subscriber: <topic>.dlq.<subscriber>.
        dead_letters:
          patterns: ["*.dlq", "*.dlq.*"]
          topics:
            - topic: learning.requested.dlq.course-agent
              source: learning.requested
              subscriber: course-agent
            - topic: lesson.generated.dlq.frontend
              source: lesson.generated
              subscriber: frontend
            - topic: exercise.submitted.dlq.exercise-agent
              source: exercise.submitted
              subscriber: exercise-agent
            - topic: exercise.graded.dlq.progress-agent
              source: exercise.graded
              subscriber: progress-agent
            - topic: exercise.graded.dlq.frontend
              source: exercise.graded
              subscriber: frontend
            - topic: progress.updated.dlq.frontend
              source: progress.updated
              subscriber: frontend
            - topic: course.completed.dlq.course-agent
              source: course.completed
              subscriber: course-agent

        # Watched consumer groups (Dapr app-ids) and the topics each consumes. Flowmeter's own group is always watched.
        groups:
          - group: course-agent
            topics: [learning.requested, course.completed]
          - group: frontend
            topics: [lesson.generated, exercise.graded, progress.updated]
          - group: exercise-agent
            topics: [exercise.submitted]
          - group: progress-agent
            topics: [exercise.graded]

        # Request -> response flows, correlated by the W3C trace-id of traceparent.
        flows:
          - name: lesson
            from: learning.requested
            to: lesson.generated
            correlation: trace-id
            timeout: 60s
          - name: grading
            from: exercise.submitted
            to: exercise.graded
            correlation: trace-id
            timeout: 60s
          - name: submission-to-progress   # two hops: exercise-agent, then progress-agent
            from: exercise.submitted
            to: progress.updated
            correlation: trace-id
            timeout: 60s

        slos:
          - name: grading-p95
            flow: grading
            quantile: 0.95
            threshold: 500ms

        # limits: the defaults (see analyzers/README.md).

        """#
}
