#!/usr/bin/env python3
"""Generates Flowmeter's Grafana dashboards (deploy/grafana/dashboards/*.json).

The JSON files are what Grafana provisions; this script is their source. Change a panel here, then run

    python3 deploy/grafana/generate.py           # rewrite the JSON files
    python3 deploy/grafana/generate.py --check   # exit 1 if a JSON file differs from what this script makes

Metric names and labels are DESIGN.md section 3.3 (and the self-metrics listed in deploy/README.md). Every
panel and query uses the dashboard's `datasource` variable; no dashboard has an "id" or "__inputs", so the
files can be provisioned as they are.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dashboards")

DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39
RI = "$__rate_interval"

# The latency SLO of analyzers/learnflow.yaml (grading-p95): 95% of flows within 0.5 s, a bucket boundary.
SLO_SECONDS = 0.5
SLO_TARGET = 0.95

STATUS_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "ok": {"color": "green", "index": 0, "text": "ok"},
            "warning": {"color": "yellow", "index": 1, "text": "warning"},
            "stalled": {"color": "orange", "index": 2, "text": "stalled"},
            "stopped": {"color": "red", "index": 3, "text": "stopped"},
            "error": {"color": "purple", "index": 4, "text": "error"},
        },
    }
]
STATUS_NUMBER_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"color": "green", "index": 0, "text": "ok"},
            "1": {"color": "yellow", "index": 1, "text": "warning"},
            "2": {"color": "orange", "index": 2, "text": "stalled"},
            "3": {"color": "red", "index": 3, "text": "stopped"},
            "4": {"color": "purple", "index": 4, "text": "error"},
        },
    }
]
UP_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"color": "red", "index": 0, "text": "down"},
            "1": {"color": "green", "index": 1, "text": "up"},
        },
    }
]


def status_weight_expr(selector):
    """One number per group for its status: 0 ok, 1 warning, 2 stalled, 3 stopped, 4 error.

    flowmeter_consumergroup_status has five series per group, exactly one of them 1; weighting each by its
    severity and taking the max turns that into a value a state timeline can color.
    """
    parts = [
        f'flowmeter_consumergroup_status{{{selector}, status="{status}"}} * {weight}'
        for status, weight in [("warning", 1), ("stalled", 2), ("stopped", 3), ("error", 4), ("ok", 0)]
    ]
    return "max by (group) (\n    " + "\n  or ".join(parts) + "\n)"


# --------------------------------------------------------------------------------------------------------------
# Building blocks


def target(expr, legend=None, ref="A", instant=False, table=False):
    t = {"datasource": DS, "refId": ref, "expr": expr, "editorMode": "code", "range": not instant}
    if instant:
        t["instant"] = True
    if legend is not None:
        t["legendFormat"] = legend
    if table:
        t["format"] = "table"
    return t


def targets(*specs):
    """specs: (expr, legend) pairs; refIds A, B, C, ..."""
    return [target(expr, legend, ref=chr(ord("A") + i)) for i, (expr, legend) in enumerate(specs)]


def thresholds(*steps, mode="absolute"):
    """steps: (value or None, color)"""
    return {"mode": mode, "steps": [{"color": color, "value": value} for value, color in steps]}


def timeseries(
    title,
    tgts,
    unit="short",
    description="",
    w=12,
    h=8,
    threshold_line=None,
    threshold_steps=None,
    min_=None,
    max_=None,
    stack=False,
    links=None,
    field_links=None,
    decimals=None,
):
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10 if not stack else 30,
        "showPoints": "never",
        "spanNulls": False,
        "axisSoftMin": 0,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "off"},
    }
    defaults = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}}
    if threshold_line is not None:
        custom["thresholdsStyle"] = {"mode": "line+area" if threshold_steps else "dashed"}
        defaults["thresholds"] = threshold_steps or thresholds((None, "green"), (threshold_line, "red"))
    else:
        defaults["thresholds"] = thresholds((None, "green"))
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    if decimals is not None:
        defaults["decimals"] = decimals
    if field_links:
        defaults["links"] = field_links
    panel = {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "_size": (w, h),
    }
    if links:
        panel["links"] = links
    return panel


def stat(title, tgts, unit="short", description="", w=4, h=4, steps=None, mappings=None, no_value=None,
         text_mode="auto", graph=True, decimals=None, color_mode="value"):
    defaults = {
        "unit": unit,
        "thresholds": steps or thresholds((None, "green")),
        "mappings": mappings or [],
        "color": {"mode": "thresholds"},
    }
    if no_value is not None:
        defaults["noValue"] = no_value
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": color_mode,
            "graphMode": "area" if graph else "none",
            "textMode": text_mode,
            "justifyMode": "auto",
            "orientation": "auto",
        },
        "_size": (w, h),
    }


def table(title, tgts, description="", w=12, h=8, exclude=(), rename=None, overrides=None, merge=False,
          sort_by=None):
    exclude_map = {name: True for name in ("Time", "__name__", *exclude)}
    transformations = []
    if merge:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {"id": "organize", "options": {"excludeByName": exclude_map, "renameByName": rename or {}, "indexByName": {}}}
    )
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "transformations": transformations,
        "fieldConfig": {
            "defaults": {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}, "thresholds": thresholds((None, "green"))},
            "overrides": overrides or [],
        },
        "options": options,
        "_size": (w, h),
    }


def state_timeline(title, tgts, description="", w=12, h=8, mappings=None, steps=None):
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": {
            "defaults": {
                "custom": {"fillOpacity": 80, "lineWidth": 0},
                "color": {"mode": "thresholds"},
                "thresholds": steps or thresholds((None, "green")),
                "mappings": mappings or [],
            },
            "overrides": [],
        },
        "options": {
            "mergeValues": True,
            "showValue": "auto",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        "_size": (w, h),
    }


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def status_column_override(column="status"):
    return [
        {
            "matcher": {"id": "byName", "options": column},
            "properties": [
                {"id": "mappings", "value": STATUS_MAPPINGS},
                {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}},
            ],
        }
    ]


def layout(panels):
    """Assigns ids and gridPos left to right, top to bottom; a row starts a new line."""
    x = y = line_h = 0
    out = []
    for pid, panel in enumerate(panels, start=1):
        w, h = panel.pop("_size")
        if panel["type"] == "row" or x + w > 24:
            y += line_h
            x = line_h = 0
        panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        panel["id"] = pid
        x += w
        line_h = max(line_h, h)
        if panel["type"] == "row":
            y += h
            x = line_h = 0
        out.append(panel)
    return out


def datasource_variable():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(name, label, query, multi=True, include_all=True, description=""):
    v = {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
        "hide": 0,
        "includeAll": include_all,
        "multi": multi,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }
    if include_all:
        v["allValue"] = ".*"
    return v


def dashboard(uid, title, description, tags, variables, panels, refresh="30s", time_from="now-6h"):
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    "datasource": DS,
                    "enable": True,
                    "expr": 'ALERTS{alertname=~"Flowmeter.*", alertstate="firing"}',
                    "iconColor": "red",
                    "name": "Firing Flowmeter alerts",
                    "step": "60s",
                    "titleFormat": "{{alertname}}",
                    "textFormat": "{{severity}} {{group}}{{topic}}{{flow}}{{instance}}",
                    "useValueForTime": False,
                },
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": False,
                "keepTime": True,
                "tags": ["flowmeter"],
                "targetBlank": False,
                "title": "Flowmeter dashboards",
                "type": "dashboards",
            }
        ],
        "panels": layout(panels),
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "tags": tags,
        "templating": {"list": [datasource_variable(), *variables]},
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


LAG_DRILLDOWN = [
    {
        "title": "Consumer lag of ${__field.labels.group}",
        "url": "/d/flowmeter-consumer-lag/flowmeter-consumer-lag?var-group=${__field.labels.group}&${datasource:queryparam}&${__url_time_range}",
    }
]
LAG_PANEL_LINK = [
    {
        "title": "Consumer lag drill-down",
        "url": "/d/flowmeter-consumer-lag/flowmeter-consumer-lag?${group:queryparam}&${datasource:queryparam}&${__url_time_range}",
    }
]

# Dead-letter topics, by analyzers/learnflow.yaml's patterns "*.dlq" and "*.dlq.*": their own records are
# events of the DLQ topic, which must not count as traffic of the source topics.
NOT_DLQ = 'topic!~".*[.]dlq([.].*)?"'


# --------------------------------------------------------------------------------------------------------------
# LearnFlow overview


def learnflow_overview():
    t = 'topic=~"$topic"'
    f = 'flow=~"$flow"'
    g = 'group=~"$group"'
    slo_line = thresholds((None, "green"), (SLO_SECONDS, "red"))
    share_steps = thresholds((None, "red"), (SLO_TARGET, "green"))
    panels = [
        row("Events"),
        stat(
            "Events/s",
            targets((f'sum(rate(flowmeter_events_total{{{t}, {NOT_DLQ}}}[{RI}]))', "events/s")),
            unit="cps",
            description="Records analyzed per second on the selected topics, dead-letter topics excluded.",
        ),
        stat(
            "Dead-lettered",
            targets(
                (
                    f"sum(rate(flowmeter_deadletter_events_total{{{t}}}[{RI}]))\n  /\n"
                    f"sum(rate(flowmeter_events_total{{{t}, {NOT_DLQ}}}[{RI}]))",
                    "ratio",
                )
            ),
            unit="percentunit",
            decimals=2,
            steps=thresholds((None, "green"), (0.01, "red")),
            description="Dead-lettered copies / events of the selected source topics. The alert fires above 1% for 10 minutes.",
        ),
        stat(
            "Invalid events/s",
            targets((f"sum(rate(flowmeter_events_invalid_total{{{t}}}[{RI}]))", "invalid/s")),
            unit="cps",
            steps=thresholds((None, "green"), (0.001, "orange")),
            description="Records that are not valid CloudEvents (all reasons).",
        ),
        stat(
            "Flows within 500 ms (range)",
            targets(
                (
                    f'sum(increase(flowmeter_flow_latency_seconds_bucket{{{f}, le="0.5"}}[$__range]))\n  /\n'
                    f"sum(increase(flowmeter_flow_latency_seconds_count{{{f}}}[$__range]))",
                    "within 500 ms",
                )
            ),
            unit="percentunit",
            decimals=2,
            steps=share_steps,
            graph=False,
            description="Share of the selected flows completed within 500 ms over the whole dashboard time range "
            "(SLO grading-p95: at least 95%).",
        ),
        stat(
            "Groups not ok",
            targets((f'count(flowmeter_consumergroup_status{{{g}, status!="ok"}} == 1) or vector(0)', "groups")),
            steps=thresholds((None, "green"), (1, "red")),
            graph=False,
            description="Watched consumer groups whose status is warning, stalled, stopped or error.",
        ),
        stat(
            "Worst lag",
            targets((f"max(flowmeter_consumergroup_lag_seconds{{{g}}})", "seconds")),
            unit="s",
            steps=thresholds((None, "green"), (60, "red")),
            description="Oldest unconsumed record over all selected groups and partitions. The alert fires above 60 s for 5 minutes.",
        ),
        timeseries(
            "Event rate by topic",
            targets((f"sum by (topic) (rate(flowmeter_events_total{{{t}}}[{RI}]))", "{{topic}}")),
            unit="cps",
            description="flowmeter_events_total: every record analyzed, once.",
        ),
        timeseries(
            "Event rate by topic and type",
            targets((f"sum by (topic, type) (rate(flowmeter_events_total{{{t}}}[{RI}]))", "{{topic}} {{type}}")),
            unit="cps",
            description="type is the CloudEvent type, or raw, tombstone, malformed, unknown, other (over the per-topic type limit).",
        ),
        row("Flows and the latency SLO"),
        timeseries(
            "Flow latency p50 / p95 / p99",
            targets(
                *[
                    (
                        f"histogram_quantile({q}, sum by (flow, le) (rate(flowmeter_flow_latency_seconds_bucket{{{f}}}[{RI}])))",
                        f"{{{{flow}}}} {name}",
                    )
                    for q, name in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]
                ]
            ),
            unit="s",
            threshold_line=SLO_SECONDS,
            threshold_steps=slo_line,
            description="Request record timestamp to response record timestamp (histogram quantiles, interpolated "
            "within buckets). The red line is the 500 ms SLO boundary of grading-p95.",
        ),
        timeseries(
            "Share of flows within 500 ms",
            targets(
                (
                    f'sum by (flow) (rate(flowmeter_flow_latency_seconds_bucket{{{f}, le="0.5"}}[{RI}]))\n  /\n'
                    f"sum by (flow) (rate(flowmeter_flow_latency_seconds_count{{{f}}}[{RI}]))",
                    "{{flow}}",
                )
            ),
            unit="percentunit",
            min_=0,
            max_=1,
            threshold_line=SLO_TARGET,
            threshold_steps=share_steps,
            description="Completed flows within 0.5 s (a bucket boundary, so exact). SLO grading-p95 wants at least 95%.",
        ),
        timeseries(
            "Latency SLO burn rate (grading)",
            targets(
                *[
                    (f'flow:flowmeter_flow_slo:error_ratio_rate{w}{{flow="grading"}} / 0.05', f"burn rate {w}")
                    for w in ("5m", "30m", "1h", "6h")
                ]
            ),
            unit="short",
            threshold_line=6,
            threshold_steps=thresholds((None, "green"), (6, "orange"), (14.4, "red")),
            description="Error ratio (slower than 500 ms or never completed) / error budget 5%, from the recording "
            "rules of deploy/prometheus/rules. Page: 1h and 5m above 14.4; ticket: 6h and 30m above 6.",
        ),
        timeseries(
            "Flow outcomes/s",
            targets(
                (f"sum by (flow) (rate(flowmeter_flow_latency_seconds_count{{{f}}}[{RI}]))", "{{flow}} completed"),
                (f"sum by (flow) (rate(flowmeter_flow_incomplete_total{{{f}}}[{RI}]))", "{{flow}} incomplete"),
                (f"sum by (flow) (rate(flowmeter_flow_evicted_total{{{f}}}[{RI}]))", "{{flow}} evicted"),
                (f"sum by (flow) (rate(flowmeter_flow_negative_latency_total{{{f}}}[{RI}]))", "{{flow}} negative latency"),
            ),
            unit="cps",
            description="Completed (response seen), incomplete (no response within the flow timeout), evicted "
            "(dropped by the pending-request bound) and negative latency (response stamped before its request: clock skew).",
        ),
        row("Dead letters"),
        timeseries(
            "Dead-letter ratio by topic",
            targets(
                (
                    f"sum by (topic) (rate(flowmeter_deadletter_events_total{{{t}}}[{RI}]))\n  /\n"
                    f"sum by (topic) (rate(flowmeter_events_total{{{t}}}[{RI}]))",
                    "{{topic}}",
                )
            ),
            unit="percentunit",
            threshold_line=0.01,
            w=8,
            description="Dead-lettered copies / events of the source topic. The alert threshold is 1% for 10 minutes.",
        ),
        timeseries(
            "Dead-lettered events/s",
            targets(
                (
                    f"sum by (topic, dead_letter_topic) (rate(flowmeter_deadletter_events_total{{{t}}}[{RI}]))",
                    "{{topic}} → {{dead_letter_topic}}",
                )
            ),
            unit="cps",
            w=8,
            description="By source topic and dead-letter topic; LearnFlow's DLQ topics name the subscriber that gave up "
            "(<topic>.dlq.<subscriber>).",
        ),
        timeseries(
            "Time to dead letter p50 / p95",
            targets(
                (
                    f"histogram_quantile(0.5, sum by (topic, le) (rate(flowmeter_deadletter_delay_seconds_bucket{{{t}}}[{RI}])))",
                    "{{topic}} p50",
                ),
                (
                    f"histogram_quantile(0.95, sum by (topic, le) (rate(flowmeter_deadletter_delay_seconds_bucket{{{t}}}[{RI}])))",
                    "{{topic}} p95",
                ),
            ),
            unit="s",
            w=8,
            description="Original record timestamp to dead-letter record timestamp: how long subscribers retried.",
        ),
        row("Consumer groups"),
        table(
            "Group status now",
            [target(f"flowmeter_consumergroup_status{{{g}}} == 1", ref="A", instant=True, table=True)],
            description="The status of each watched group: its worst partition (error > stopped > stalled > warning > ok).",
            w=8,
            exclude=("Value", "job", "instance"),
            overrides=status_column_override(),
        ),
        state_timeline(
            "Group status over time",
            [target(status_weight_expr(g), "{{group}}")],
            description="ok: keeping up or idle; warning: lag growing while committing; stalled: no commit for a status "
            "window while records wait; stopped: for more than twice the window (or no members); error: offset out of "
            "range or broker errors.",
            w=16,
            mappings=STATUS_NUMBER_MAPPINGS,
        ),
        timeseries(
            "Lag (messages) by group",
            targets((f"sum by (group) (flowmeter_consumergroup_lag_messages{{{g}}})", "{{group}}")),
            description="Data records not yet consumed, summed over the group's partitions with a commit.",
            links=LAG_PANEL_LINK,
            field_links=LAG_DRILLDOWN,
        ),
        timeseries(
            "Lag (seconds) by group, worst partition",
            targets((f"max by (group) (flowmeter_consumergroup_lag_seconds{{{g}}})", "{{group}}")),
            unit="s",
            threshold_line=60,
            description="Age of the oldest unconsumed record; 0 when caught up. The alert fires above 60 s for 5 minutes.",
            links=LAG_PANEL_LINK,
            field_links=LAG_DRILLDOWN,
        ),
        row("Data quality"),
        timeseries(
            "Invalid events/s by reason",
            targets((f"sum by (topic, reason) (rate(flowmeter_events_invalid_total{{{t}}}[{RI}]))", "{{topic}} {{reason}}")),
            unit="cps",
            description="Records that are not valid CloudEvents: malformed_json, non_object_json, missing_specversion, "
            "unsupported_specversion, missing_id, missing_source, missing_type, ...",
        ),
        timeseries(
            "Decoder flags/s",
            targets((f"sum by (topic, flag) (rate(flowmeter_event_flags_total{{{t}}}[{RI}]))", "{{topic}} {{flag}}")),
            unit="cps",
            w=6,
            description="Oddities the decoder tolerated (WIRE-FORMAT.md section 10): oversize, double_encoded_json, "
            "bad_traceparent, missing_time, topic_mismatch, ...",
        ),
        timeseries(
            "Duplicate deliveries/s",
            targets((f"sum by (topic) (rate(flowmeter_events_duplicate_total{{{t}}}[{RI}]))", "{{topic}}")),
            unit="cps",
            w=6,
            description="Redeliveries of a CloudEvent id already seen on the topic (bounded window); they are still "
            "counted as events.",
        ),
    ]
    variables = [
        query_variable("topic", "Topic", "label_values(flowmeter_events_total, topic)"),
        query_variable("flow", "Flow", "label_values(flowmeter_flow_latency_seconds_count, flow)"),
        query_variable("group", "Consumer group", "label_values(flowmeter_consumergroup_status, group)"),
    ]
    return dashboard(
        "learnflow-overview",
        "LearnFlow overview",
        "LearnFlow's Dapr pub/sub traffic as Flowmeter measures it: event rates, request→response flow latency "
        "against the grading SLO (95% within 500 ms), dead letters, consumer-group lag and status, invalid events.",
        ["flowmeter", "learnflow"],
        variables,
        panels,
    )


# --------------------------------------------------------------------------------------------------------------
# Consumer lag drill-down


def consumer_lag():
    g = 'group=~"$group"'
    gt = 'group=~"$group", topic=~"$topic"'
    panels = [
        row("Status"),
        table(
            "Status now",
            [target(f"flowmeter_consumergroup_status{{{g}}} == 1", ref="A", instant=True, table=True)],
            w=6,
            exclude=("Value", "job", "instance"),
            overrides=status_column_override(),
            description="Worst partition of each group.",
        ),
        state_timeline(
            "Status over time",
            [target(status_weight_expr(g), "{{group}}")],
            w=12,
            mappings=STATUS_NUMBER_MAPPINGS,
            description="0 ok, 1 warning, 2 stalled, 3 stopped, 4 error (see DESIGN.md section 4).",
        ),
        stat(
            "Lag stale",
            targets((f"max by (group) (flowmeter_consumergroup_lag_stale{{{g}}})", "{{group}}")),
            w=6,
            h=8,
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"color": "green", "index": 0, "text": "fresh"},
                        "1": {"color": "orange", "index": 1, "text": "stale"},
                    },
                }
            ],
            steps=thresholds((None, "green"), (1, "orange")),
            graph=False,
            text_mode="value_and_name",
            color_mode="background",
            description="stale: the lag could not be refreshed; the values shown are the last known ones.",
        ),
        row("Lag per partition"),
        timeseries(
            "Lag (messages) per partition",
            targets(
                (
                    f"max by (group, topic, partition) (flowmeter_consumergroup_lag_messages{{{gt}}})",
                    "{{group}} {{topic}}/{{partition}}",
                )
            ),
            description="Data records the group has not consumed (transaction markers excluded). Partitions without a "
            "commit have no lag series: see 'Partitions without a commit'.",
        ),
        timeseries(
            "Lag (seconds) per partition",
            targets(
                (
                    f"max by (group, topic, partition) (flowmeter_consumergroup_lag_seconds{{{gt}}})",
                    "{{group}} {{topic}}/{{partition}}",
                )
            ),
            unit="s",
            threshold_line=60,
            description="Now minus the timestamp of the first unconsumed record; 0 when caught up.",
        ),
        timeseries(
            "Lag change (messages/s) by topic",
            targets(
                (
                    f"sum by (group, topic) (deriv(flowmeter_consumergroup_lag_messages{{{gt}}}[{RI}]))",
                    "{{group}} {{topic}}",
                )
            ),
            unit="short",
            description="Positive: falling behind; negative: catching up.",
        ),
        table(
            "Partitions now",
            [
                target(f"max by (group, topic, partition) (flowmeter_consumergroup_lag_messages{{{gt}}})", ref="A", instant=True, table=True),
                target(f"max by (group, topic, partition) (flowmeter_consumergroup_lag_seconds{{{gt}}})", ref="B", instant=True, table=True),
                target(f"max by (group, topic, partition) (flowmeter_consumergroup_no_commit{{{gt}}})", ref="C", instant=True, table=True),
                target(f"max by (group, topic, partition) (flowmeter_consumergroup_lost_messages{{{gt}}})", ref="D", instant=True, table=True),
            ],
            merge=True,
            rename={
                "Value #A": "lag (messages)",
                "Value #B": "lag (seconds)",
                "Value #C": "no commit",
                "Value #D": "lost messages",
            },
            sort_by="lag (seconds)",
            description="One line per partition. Partitions without a commit have no lag values.",
        ),
        row("Commits and losses"),
        timeseries(
            "Partitions without a commit",
            targets((f"sum by (group, topic) (flowmeter_consumergroup_no_commit{{{gt}}})", "{{group}} {{topic}}")),
            decimals=0,
            description="flowmeter_consumergroup_no_commit: partitions where the group has never committed (no lag "
            "series there, never a fake number).",
        ),
        timeseries(
            "Lost messages (commit below log start)",
            targets(
                (
                    f"max by (group, topic, partition) (flowmeter_consumergroup_lost_messages{{{gt}}})",
                    "{{group}} {{topic}}/{{partition}}",
                )
            ),
            threshold_line=1,
            description="Records deleted by retention before the group consumed them: log start minus committed offset.",
        ),
    ]
    variables = [
        query_variable("group", "Consumer group", "label_values(flowmeter_consumergroup_status, group)"),
        query_variable("topic", "Topic", 'label_values(flowmeter_consumergroup_no_commit{group=~"$group"}, topic)'),
    ]
    return dashboard(
        "flowmeter-consumer-lag",
        "Flowmeter consumer lag",
        "Per consumer group and partition: lag in messages and seconds, commits, records lost to retention, status over time.",
        ["flowmeter", "learnflow", "kafka"],
        variables,
        panels,
        refresh="10s",
        time_from="now-1h",
    )


# --------------------------------------------------------------------------------------------------------------
# Flowmeter self-health


def flowmeter_self():
    s = 'job=~"$job", instance=~"$instance"'
    panels = [
        row("Health"),
        stat(
            "Scrape",
            targets((f"up{{{s}}}", "{{instance}}")),
            mappings=UP_MAPPINGS,
            steps=thresholds((None, "red"), (1, "green")),
            graph=False,
            color_mode="background",
            description="Prometheus's scrape of /metrics.",
        ),
        stat(
            "Kafka",
            targets((f"flowmeter_kafka_up{{{s}}}", "{{instance}}")),
            mappings=UP_MAPPINGS,
            steps=thresholds((None, "red"), (1, "green")),
            graph=False,
            color_mode="background",
            description="1 when the Kafka cluster answered the last metadata request.",
        ),
        stat(
            "PostgreSQL",
            targets((f"flowmeter_postgres_up{{{s}}}", "{{instance}}")),
            mappings=UP_MAPPINGS,
            steps=thresholds((None, "red"), (1, "green")),
            no_value="not configured",
            graph=False,
            color_mode="background",
            description="1 when the last PostgreSQL operation succeeded. No value: run without --postgres (live metrics only).",
        ),
        stat(
            "Intake",
            targets((f"flowmeter_intake_paused{{{s}}}", "{{instance}}")),
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"color": "green", "index": 0, "text": "running"},
                        "1": {"color": "orange", "index": 1, "text": "paused"},
                    },
                }
            ],
            steps=thresholds((None, "green"), (1, "orange")),
            no_value="no rollups",
            graph=False,
            color_mode="background",
            description="Paused while too much is unflushed (back-pressure) or stored offsets are re-read. Exported only with PostgreSQL.",
        ),
        stat(
            "Assigned partitions",
            targets((f"flowmeter_assigned_partitions{{{s}}}", "{{instance}}")),
            graph=False,
            description="Partitions of the analyzed topics assigned to each replica.",
        ),
        table(
            "Version",
            [target(f"flowmeter_build_info{{{s}}}", ref="A", instant=True, table=True)],
            w=4,
            h=4,
            exclude=("Value", "job"),
            description="flowmeter_build_info.",
        ),
        row("Intake and analysis"),
        timeseries(
            "Records consumed/s by topic",
            targets((f"sum by (topic) (rate(flowmeter_records_consumed_total{{{s}}}[{RI}]))", "{{topic}}")),
            unit="cps",
            stack=True,
        ),
        timeseries(
            "Delivery delay p50 / p95 / p99",
            targets(
                *[
                    (
                        f"histogram_quantile({q}, sum by (le) (rate(flowmeter_event_delivery_seconds_bucket{{{s}}}[{RI}])))",
                        name,
                    )
                    for q, name in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]
                ]
            ),
            unit="s",
            description="Analyzer read time minus record timestamp, all topics: how far behind real time Flowmeter reads.",
        ),
        timeseries(
            "Delivery delay p95 by topic",
            targets(
                (
                    f"histogram_quantile(0.95, sum by (topic, le) (rate(flowmeter_event_delivery_seconds_bucket{{{s}}}[{RI}])))",
                    "{{topic}}",
                )
            ),
            unit="s",
        ),
        timeseries(
            "Lag poll duration",
            targets((f"flowmeter_lag_poll_seconds{{{s}}}", "{{instance}}")),
            unit="s",
            description="Duration of the last lag polling cycle (group offsets, watermarks, record timestamps).",
        ),
        row("Rollups (PostgreSQL)"),
        timeseries(
            "Flush duration p50 / p99",
            targets(
                (
                    f"histogram_quantile(0.5, sum by (instance, le) (rate(flowmeter_rollup_flush_seconds_bucket{{{s}}}[{RI}])))",
                    "{{instance}} p50",
                ),
                (
                    f"histogram_quantile(0.99, sum by (instance, le) (rate(flowmeter_rollup_flush_seconds_bucket{{{s}}}[{RI}])))",
                    "{{instance}} p99",
                ),
            ),
            unit="s",
            description="Successful flushes: rollup deltas and the next offsets in one transaction.",
        ),
        timeseries(
            "Time since last flush",
            targets((f"time() - flowmeter_rollup_last_flush_timestamp_seconds{{{s}}}", "{{instance}}")),
            unit="s",
            threshold_line=120,
            description="No flush is needed while nothing new arrives, so this grows on an idle platform. The alert "
            "fires above 120 s only while records wait (flowmeter_rollup_unflushed_records > 0).",
        ),
        timeseries(
            "Flush failures",
            targets((f"sum by (instance) (increase(flowmeter_rollup_flush_failures_total{{{s}}}[{RI}]))", "{{instance}}")),
            threshold_line=1,
            description="Failed flushes per rate interval (retried with backoff up to 30 s).",
        ),
        timeseries(
            "Rows written/s",
            targets((f"sum by (instance) (rate(flowmeter_rollup_rows_written_total{{{s}}}[{RI}]))", "{{instance}}")),
            unit="cps",
        ),
        timeseries(
            "Unflushed records",
            targets((f"flowmeter_rollup_unflushed_records{{{s}}}", "{{instance}}")),
            description="Analyzed but not yet in PostgreSQL; intake pauses at the configured bound.",
        ),
        state_timeline(
            "Intake paused",
            [target(f"flowmeter_intake_paused{{{s}}}", "{{instance}}")],
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"color": "green", "index": 0, "text": "running"},
                        "1": {"color": "orange", "index": 1, "text": "paused"},
                    },
                }
            ],
        ),
        row("Alerts"),
        table(
            "Firing Flowmeter alerts",
            [target('ALERTS{alertname=~"Flowmeter.*", alertstate="firing"}', ref="A", instant=True, table=True)],
            w=24,
            h=6,
            exclude=("Value", "__name__", "alertstate"),
            description="From the rules in deploy/prometheus/rules; empty when all is well.",
        ),
    ]
    variables = [
        query_variable("job", "Job", "label_values(flowmeter_build_info, job)"),
        query_variable("instance", "Instance", 'label_values(flowmeter_build_info{job=~"$job"}, instance)'),
    ]
    return dashboard(
        "flowmeter-self",
        "Flowmeter self-health",
        "Flowmeter itself: scrape, Kafka and PostgreSQL reachability, intake, delivery delay, rollup flushes, back-pressure.",
        ["flowmeter"],
        variables,
        panels,
        refresh="10s",
        time_from="now-1h",
    )


# --------------------------------------------------------------------------------------------------------------
# Dapr sidecar pub/sub


def dapr_pubsub():
    sel = 'namespace=~"$namespace", app_id=~"$app_id", component=~"$component", topic=~"$topic"'
    panels = [
        row("Publish (egress)"),
        timeseries(
            "Published/s by app and topic",
            targets((f"sum by (app_id, topic) (rate(dapr_component_pubsub_egress_count{{{sel}}}[{RI}]))", "{{app_id}} → {{topic}}")),
            unit="cps",
            w=8,
            description="dapr_component_pubsub_egress_count: messages the sidecar published to the pub/sub component.",
        ),
        timeseries(
            "Publish failure ratio",
            targets(
                (
                    f'sum by (app_id, topic) (rate(dapr_component_pubsub_egress_count{{{sel}, success="false"}}[{RI}]))\n  /\n'
                    f"sum by (app_id, topic) (rate(dapr_component_pubsub_egress_count{{{sel}}}[{RI}]))",
                    "{{app_id}} → {{topic}}",
                )
            ),
            unit="percentunit",
            threshold_line=0.01,
            w=8,
        ),
        timeseries(
            "Publish latency p95 / p99",
            targets(
                (
                    f"histogram_quantile(0.95, sum by (app_id, topic, le) (rate(dapr_component_pubsub_egress_latencies_bucket{{{sel}}}[{RI}])))",
                    "{{app_id}} → {{topic}} p95",
                ),
                (
                    f"histogram_quantile(0.99, sum by (app_id, topic, le) (rate(dapr_component_pubsub_egress_latencies_bucket{{{sel}}}[{RI}])))",
                    "{{app_id}} → {{topic}} p99",
                ),
            ),
            unit="ms",
            w=8,
            description="Dapr records latencies in milliseconds: the latency of the pub/sub component's response.",
        ),
        row("Subscribe (ingress)"),
        timeseries(
            "Delivered/s by app, topic and outcome",
            targets(
                (
                    f"sum by (app_id, topic, process_status) (rate(dapr_component_pubsub_ingress_count{{{sel}}}[{RI}]))",
                    "{{topic}} → {{app_id}} {{process_status}}",
                )
            ),
            unit="cps",
            w=8,
            description="process_status: success, retry (the app asked for redelivery or failed) or drop (the app "
            "dropped it; with a dead-letter topic configured Dapr sends it there).",
        ),
        timeseries(
            "Retry and drop ratio",
            targets(
                (
                    f'sum by (app_id, topic, process_status) (rate(dapr_component_pubsub_ingress_count{{{sel}, process_status=~"retry|drop"}}[{RI}]))\n'
                    f"  / ignoring (process_status) group_left\n"
                    f"sum by (app_id, topic) (rate(dapr_component_pubsub_ingress_count{{{sel}}}[{RI}]))",
                    "{{topic}} → {{app_id}} {{process_status}}",
                )
            ),
            unit="percentunit",
            threshold_line=0.01,
            w=8,
        ),
        timeseries(
            "App processing latency p95 / p99",
            targets(
                (
                    f"histogram_quantile(0.95, sum by (app_id, topic, le) (rate(dapr_component_pubsub_ingress_latencies_bucket{{{sel}}}[{RI}])))",
                    "{{topic}} → {{app_id}} p95",
                ),
                (
                    f"histogram_quantile(0.99, sum by (app_id, topic, le) (rate(dapr_component_pubsub_ingress_latencies_bucket{{{sel}}}[{RI}])))",
                    "{{topic}} → {{app_id}} p99",
                ),
            ),
            unit="ms",
            w=8,
            description="dapr_component_pubsub_ingress_latencies: the subscribing app's event processing time (ms).",
        ),
        row("Dapr and Flowmeter side by side"),
        timeseries(
            "Published (Dapr) vs analyzed (Flowmeter) events/s",
            targets(
                (
                    f'sum by (topic) (rate(dapr_component_pubsub_egress_count{{{sel}, success="true"}}[{RI}]))',
                    "{{topic}} published (Dapr)",
                ),
                (f'sum by (topic) (rate(flowmeter_events_total{{topic=~"$topic"}}[{RI}]))', "{{topic}} analyzed (Flowmeter)"),
            ),
            unit="cps",
            description="Both should agree per topic; Dapr counts only apps with sidecars, Flowmeter every record on the topic.",
        ),
        timeseries(
            "Dropped (Dapr) vs dead-lettered (Flowmeter) events/s",
            targets(
                (
                    f'sum by (topic) (rate(dapr_component_pubsub_ingress_count{{{sel}, process_status="drop"}}[{RI}]))',
                    "{{topic}} dropped (Dapr)",
                ),
                (
                    f'sum by (topic) (rate(flowmeter_deadletter_events_total{{topic=~"$topic"}}[{RI}]))',
                    "{{topic}} dead-lettered (Flowmeter)",
                ),
            ),
            unit="cps",
            description="Dapr's drops by subscription topic next to the DLQ copies Flowmeter finds on the dead-letter topics.",
        ),
    ]
    dapr_any = '{__name__=~"dapr_component_pubsub_(ingress|egress)_count"}'
    variables = [
        query_variable("namespace", "Namespace", f"label_values({dapr_any}, namespace)"),
        query_variable("app_id", "App id", f'label_values({{__name__=~"dapr_component_pubsub_(ingress|egress)_count", namespace=~"$namespace"}}, app_id)'),
        query_variable("component", "Component", f'label_values({{__name__=~"dapr_component_pubsub_(ingress|egress)_count", app_id=~"$app_id"}}, component)'),
        query_variable("topic", "Topic", f'label_values({{__name__=~"dapr_component_pubsub_(ingress|egress)_count", app_id=~"$app_id"}}, topic)'),
    ]
    return dashboard(
        "learnflow-dapr-pubsub",
        "LearnFlow Dapr pub/sub",
        "Dapr sidecar pub/sub metrics of LearnFlow's services (dapr_component_pubsub_*), next to what Flowmeter sees on Kafka.",
        ["flowmeter", "learnflow", "dapr"],
        variables,
        panels,
    )


DASHBOARDS = {
    "learnflow-overview.json": learnflow_overview,
    "consumer-lag.json": consumer_lag,
    "flowmeter-self.json": flowmeter_self,
    "dapr-pubsub.json": dapr_pubsub,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare the JSON files with what this script makes")
    args = parser.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        path = os.path.join(OUT, name)
        text = render(build)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    current = f.read()
            except FileNotFoundError:
                current = None
            if current != text:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {os.path.relpath(path)}")
    if stale:
        for path in stale:
            print(f"error: {os.path.relpath(path)} differs from deploy/grafana/generate.py; run it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
