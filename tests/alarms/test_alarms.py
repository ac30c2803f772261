"""Every alarm watches a signal that exists, fires in its fault, and tells a person.

CloudWatch keys a metric by namespace, name and its exact set of dimensions: an alarm on a
dimension set nobody emits never fires (or, with missing data as breaching, always does). So
the custom-metric alarms are checked against what the functions really print: each fault
scenario below drives real handlers (moto, the Calendly sandbox) and reads their EMF output
from stdout, period by period; a small evaluator then applies the alarm's own statistic,
threshold, periods and missing-data rule to those periods. AWS-namespace alarms are checked
against the resources they name in the SAM-translated template.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from moto.events.models import EventsBackend

import calendly_sync
from calendly_sync.deliveries import KNOWN_EVENTS
from calendly_sync.observability import metrics
from calendly_sync.settings import get_settings
from local.calendly_sandbox import CalendlySandbox, TokenSpec
from local.lambda_runtime import FakeLambdaContext, load_handler, signed_delivery_event
from local.stack import function_ids, load_template
from local.stream_pump import StreamPump
from tests.conftest import SIGNING_KEY, LocalAws, sample_event
from tests.iam.roles import translated_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
ALARMS = {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
NAMESPACE = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}

Dimensions = frozenset[tuple[str, str]]
Period = list[dict[str, Any]]  # the EMF documents printed during one alarm period


# --- what an alarm watches, and how CloudWatch would judge it ------------------------------


@dataclass(frozen=True)
class Watched:
    namespace: str
    metric: str
    dimensions: Dimensions
    stat: str


def _dimensions(spec: list[dict[str, Any]]) -> Dimensions:
    return frozenset((d["Name"], d["Value"]) for d in spec)


def watched_metrics(alarm: Mapping[str, Any]) -> dict[str, Watched]:
    """The metrics an alarm reads, by metric-math id ("" for a single-metric alarm)."""
    if "MetricName" in alarm:
        hashable = [d for d in alarm["Dimensions"] if isinstance(d["Value"], str)]
        return {
            "": Watched(alarm["Namespace"], alarm["MetricName"], _dimensions(hashable), alarm["Statistic"])
        }
    found = {}
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            found[query["Id"]] = Watched(
                metric["Namespace"],
                metric["MetricName"],
                _dimensions(metric["Dimensions"]),
                query["MetricStat"]["Stat"],
            )
    return found


def custom_metric_alarms() -> dict[str, dict[str, Any]]:
    return {
        alarm_id: alarm
        for alarm_id, alarm in ALARMS.items()
        if any(w.namespace == NAMESPACE for w in watched_metrics(alarm).values())
    }


def emitted(documents: Period) -> Iterator[tuple[Watched, float]]:
    """Every (metric, value) an EMF document carries, once per dimension set it declares."""
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, str(document[name])) for name in dimension_set)
                for metric in directive["Metrics"]:
                    values = document[metric["Name"]]
                    for value in values if isinstance(values, list) else [values]:
                        yield Watched(directive["Namespace"], metric["Name"], dimensions, ""), float(value)


def datapoint(watched: Watched, period: Period) -> float | None:
    values = [
        value
        for metric, value in emitted(period)
        if (metric.namespace, metric.metric, metric.dimensions)
        == (watched.namespace, watched.metric, watched.dimensions)
    ]
    if not values:
        return None
    statistics: dict[str, Callable[[list[float]], float]] = {
        "Sum": sum,
        "Maximum": max,
        "Minimum": min,
        "SampleCount": len,
        "Average": lambda v: sum(v) / len(v),
    }
    return statistics[watched.stat](values)


def alarm_value(alarm: Mapping[str, Any], period: Period, query_id: str | None = None) -> float | None:
    """The alarm's value for one period: its metric, or the metric-math query ``query_id``
    (by default the one it returns), None for missing data."""
    watched = watched_metrics(alarm)
    if "MetricName" in alarm:
        return datapoint(watched[""], period)
    expressions = {q["Id"]: q["Expression"] for q in alarm["Metrics"] if "Expression" in q}
    if query_id is None:
        (query_id,) = [q["Id"] for q in alarm["Metrics"] if q.get("ReturnData", True)]
    if query_id in watched:
        return datapoint(watched[query_id], period)
    expression = expressions[query_id]
    # The metric math the template uses; anything else must be taught to this evaluator. As in
    # CloudWatch, SUM over an array skips series without a value, arithmetic keeps the gaps.
    if match := re.fullmatch(r"SUM\(\[([a-z0-9, ]+)\]\)", expression):
        values = [alarm_value(alarm, period, i.strip()) for i in match.group(1).split(",")]
        present = [v for v in values if v is not None]
        return sum(present) if present else None
    if match := re.fullmatch(r"([a-z0-9]+) ([+*]) ([0-9]+)", expression):
        operand = alarm_value(alarm, period, match.group(1))
        if operand is None:
            return None
        number = float(match.group(3))
        return operand + number if match.group(2) == "+" else operand * number
    raise AssertionError(f"unsupported alarm expression {expression!r}")


def _number(value: Any) -> int:
    if isinstance(value, dict) and "Ref" in value:
        return int(TEMPLATE["Parameters"][value["Ref"]]["Default"])
    return int(value)


def fires(alarm_id: str, periods: list[Period]) -> bool:
    """Whether CloudWatch would put the alarm in ALARM after these periods (oldest first)."""
    alarm = ALARMS[alarm_id]
    evaluated = _number(alarm["EvaluationPeriods"])
    needed = _number(alarm.get("DatapointsToAlarm", evaluated))
    threshold = float(alarm["Threshold"])
    compare: dict[str, Callable[[float], bool]] = {
        "GreaterThanThreshold": lambda v: v > threshold,
        "GreaterThanOrEqualToThreshold": lambda v: v >= threshold,
        "LessThanThreshold": lambda v: v < threshold,
        "LessThanOrEqualToThreshold": lambda v: v <= threshold,
    }
    breaching = 0
    for period in periods[-evaluated:]:
        value = alarm_value(alarm, period)
        if value is None:
            breaching += alarm["TreatMissingData"] == "breaching"
        else:
            breaching += compare[alarm["ComparisonOperator"]](value)
    return breaching >= needed


# --- running the functions as Lambda would, and reading what they print ---------------------


def service_of(logical_id: str) -> str:
    variables = RESOURCES[logical_id]["Properties"]["Environment"]["Variables"]
    service: str = variables["POWERTOOLS_SERVICE_NAME"]
    return service


@contextmanager
def running_as(logical_id: str) -> Iterator[None]:
    """The service dimension the function's own process would carry.

    In Lambda each function's process builds ``metrics`` from its environment, where the
    template sets POWERTOOLS_SERVICE_NAME; this one process built it once, with the tests' name.
    ``test_the_service_dimension_comes_from_the_function_s_environment`` checks the mechanism.
    """
    previous = metrics.service
    metrics.service = service_of(logical_id)
    try:
        yield
    finally:
        metrics.service = previous


def printed_metrics(capsys: pytest.CaptureFixture[str]) -> Period:
    """The EMF documents the handlers printed since the last call."""
    return [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and '"_aws"' in line
    ]


def deliver(body: Mapping[str, Any], key: str = SIGNING_KEY) -> int:
    with running_as("ReceiveWebhookFunction"):
        response = load_handler("ReceiveWebhookFunction")(
            signed_delivery_event(body, key), FakeLambdaContext(function_name="ReceiveWebhookFunction")
        )
    status: int = response["statusCode"]
    return status


def envelope(event: str, marker: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(sample_event("event_type_updated")["body"])
    body["event"] = event
    body["payload"]["updated_at"] = f"2026-11-02T08:{marker // 60 % 60:02d}:{marker % 60:02d}.000000Z"
    return body


def ensure() -> dict[str, Any]:
    with running_as("WebhookSubscriptionFunction"):
        answer: dict[str, Any] = load_handler("WebhookSubscriptionFunction")(
            {"action": "ensure"}, FakeLambdaContext(function_name="WebhookSubscriptionFunction")
        )
    return answer


def poll() -> dict[str, Any]:
    with running_as("PollCalendlyFunction"):
        answer: dict[str, Any] = load_handler("PollCalendlyFunction")(
            {"mode": "sync"}, FakeLambdaContext(function_name="PollCalendlyFunction", timeout_seconds=300)
        )
    return answer


def connect(calendly: CalendlySandbox) -> str:
    token = calendly.add_token(TokenSpec(role="owner"))
    with running_as("ValidateCredentialsFunction"):
        answer = load_handler("ValidateCredentialsFunction")({"token": token}, FakeLambdaContext())
    assert answer["valid"] is True
    return token


@pytest.fixture
def subscribed(
    aws: LocalAws, calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> CalendlySandbox:
    """Given a connected stack whose subscription exists and was found healthy since."""
    connect(calendly)
    assert ensure()["ok"] is True
    printed_metrics(capsys)  # the first creation is not part of any scenario
    return calendly


# --- the fault scenarios: each one makes its alarm fire ------------------------------------


def key_mismatch(capsys: pytest.CaptureFixture[str], hours: int) -> list[Period]:
    """Calendly signing with a key the stack does not hold: each hour, genuine deliveries and
    Calendly's retries of the earlier ones (it retries each for 24 h with back-off) fail."""
    periods = []
    for hour in range(hours):
        for retry in range(hour + 1):
            assert deliver(envelope("invitee.created", retry), key="a-key-the-stack-never-had") == 401
        periods.append(printed_metrics(capsys))
    return periods


def polls_with_the_token_revoked(
    calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str], runs: int
) -> list[Period]:
    """Scheduled syncs after the token was revoked in Calendly: the run and its check both fail."""
    for token in list(calendly.state.tokens):
        calendly.set_token_state(token, "revoked")
    periods = []
    for _ in range(runs):
        report = poll()
        assert report["ok"] is False and report["subscription"] == "check-failed"
        periods.append(printed_metrics(capsys))
    return periods


def failing_checks(calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str], hours: int) -> list[Period]:
    periods = []
    for _ in range(hours):
        calendly.faults.server_errors = 50
        assert ensure()["ok"] is False
        periods.append(printed_metrics(capsys))
    calendly.faults.server_errors = 0
    return periods


def healthy_quiet_hours(capsys: pytest.CaptureFixture[str], hours: int) -> list[Period]:
    """Hours in which the hourly check finds the subscription active and nothing is delivered."""
    periods = []
    for _ in range(hours):
        assert ensure()["ok"] is True
        periods.append(printed_metrics(capsys))
    return periods


def scenario_signature_surge(calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]) -> list[Period]:
    return key_mismatch(capsys, hours=4)


def scenario_poll_failing(calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]) -> list[Period]:
    return polls_with_the_token_revoked(calendly, capsys, runs=3)


def scenario_subscription_unhealthy(
    calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> list[Period]:
    (ours,) = calendly.subscriptions()
    calendly.disable_subscription(ours["uri"])
    assert ensure()["ok"] is True
    return [printed_metrics(capsys)]


def scenario_subscription_check_failing(
    calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> list[Period]:
    return failing_checks(calendly, capsys, hours=2)


@contextmanager
def eventbridge_refusing_every_entry() -> Iterator[None]:
    """PutEvents answering each entry with an error, as AWS does for a throttled or failed entry."""

    def refuse(self: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} for _ in entries]

    with mock.patch.object(EventsBackend, "put_events", refuse):
        yield


def scenario_publish_failing(calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]) -> list[Period]:
    """The bus refuses every entry for a quarter-hour: the stream hands the batch again and again."""
    events = boto3.client("events")
    bus = os.environ["EVENT_BUS_NAME"]
    if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus)
    assert deliver(envelope("event_type.updated")) == 200
    stream_arn = boto3.client("dynamodb").describe_table(TableName=os.environ["TABLE_NAME"])["Table"][
        "LatestStreamArn"
    ]
    pump = StreamPump(boto3.client("dynamodbstreams"), stream_arn, "ProjectDeliveriesFunction")
    pump.drain()
    printed_metrics(capsys)
    publisher = StreamPump(
        boto3.client("dynamodbstreams"), stream_arn, "PublishChangesFunction", resume_at_failure=True
    )
    periods = []
    with eventbridge_refusing_every_entry(), running_as("PublishChangesFunction"):
        for _ in range(_number(ALARMS["PublishFailingAlarm"]["EvaluationPeriods"])):
            publisher.drain()
            assert publisher.held > 0  # nothing skipped: the change waits on the stream
            periods.append(printed_metrics(capsys))
    return periods


@contextmanager
def eventbridge_refusing_entries_as_malformed() -> Iterator[None]:
    """PutEvents refusing each entry as AWS documents for a detail that is not JSON."""

    def refuse(self: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."} for _ in entries]

    with mock.patch.object(EventsBackend, "put_events", refuse):
        yield


@contextmanager
def publish_failure_queue() -> Iterator[str]:
    """PublishFailureQueue, given to the publisher as its wiring (PUBLISH_FAILURE_QUEUE_URL)."""
    url: str = boto3.client("sqs").create_queue(QueueName="calendly-test-publish-failures")["QueueUrl"]
    with mock.patch.dict(os.environ, {"PUBLISH_FAILURE_QUEUE_URL": url}):
        get_settings.cache_clear()
        try:
            yield url
        finally:
            get_settings.cache_clear()


def scenario_publish_set_aside(calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]) -> list[Period]:
    """EventBridge refuses a change's event for what it is: set aside at once, nothing waits."""
    events = boto3.client("events")
    bus = os.environ["EVENT_BUS_NAME"]
    if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus)
    assert deliver(envelope("event_type.updated")) == 200
    stream_arn = boto3.client("dynamodb").describe_table(TableName=os.environ["TABLE_NAME"])["Table"][
        "LatestStreamArn"
    ]
    StreamPump(boto3.client("dynamodbstreams"), stream_arn, "ProjectDeliveriesFunction").drain()
    printed_metrics(capsys)
    publisher = StreamPump(
        boto3.client("dynamodbstreams"), stream_arn, "PublishChangesFunction", resume_at_failure=True
    )
    with (
        publish_failure_queue() as queue_url,
        eventbridge_refusing_entries_as_malformed(),
        running_as("PublishChangesFunction"),
    ):
        assert publisher.drain() > 0
        assert publisher.held == 0 and publisher.failures == []  # nothing waits on the stream
        (message,) = boto3.client("sqs").receive_message(QueueUrl=queue_url)["Messages"]
        assert json.loads(message["Body"])["set_aside"] == "MalformedDetail"
        return [printed_metrics(capsys)]


def scenario_no_deliveries(calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]) -> list[Period]:
    return healthy_quiet_hours(capsys, hours=_number(ALARMS["NoDeliveriesAlarm"]["EvaluationPeriods"]))


SCENARIOS: dict[str, Callable[[CalendlySandbox, pytest.CaptureFixture[str]], list[Period]]] = {
    "SignatureMismatchSurgeAlarm": scenario_signature_surge,
    "PollFailingAlarm": scenario_poll_failing,
    "PollSubscriptionCheckFailingAlarm": scenario_poll_failing,
    "SubscriptionUnhealthyAlarm": scenario_subscription_unhealthy,
    "SubscriptionCheckFailingAlarm": scenario_subscription_check_failing,
    "NoDeliveriesAlarm": scenario_no_deliveries,
    "PublishFailingAlarm": scenario_publish_failing,
    "PublishSetAsideAlarm": scenario_publish_set_aside,
}


# The quiet alarm's other metrics are what keeps it calm: the tests below print each of them
# (one delivery of every event; failing checks) and read it back through the alarm's own query.
PROVEN_BY_THE_CALM_TESTS = {
    ("NoDeliveriesAlarm", "Deliveries"),
    ("NoDeliveriesAlarm", "SubscriptionFailures"),
}


def test_every_custom_metric_alarm_has_a_fault_scenario() -> None:
    assert set(custom_metric_alarms()) <= set(SCENARIOS), "add a fault scenario for each new alarm"


@pytest.mark.parametrize("alarm_id", sorted(custom_metric_alarms()))
def test_the_fault_makes_the_alarm_fire_on_metrics_the_functions_emit(
    alarm_id: str, subscribed: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the fault, played period by period through the real handlers
    periods = SCENARIOS[alarm_id](subscribed, capsys)

    # Then every metric the alarm reads was printed with exactly its dimensions (an alarm
    # expression may read metrics other scenarios emit: those are checked below)
    alarm = ALARMS[alarm_id]
    printed = {(m.namespace, m.metric, m.dimensions) for period in periods for m, _ in emitted(period)}
    for watched in watched_metrics(alarm).values():
        if (alarm_id, watched.metric) not in PROVEN_BY_THE_CALM_TESTS:
            assert (watched.namespace, watched.metric, watched.dimensions) in printed, (
                f"{alarm_id} watches {watched}, which nobody emits; emitted: {sorted(map(str, printed))}"
            )
    # And the alarm's own statistic, threshold and periods put it in ALARM
    assert fires(alarm_id, periods)


# --- and the calm that must not page anyone ------------------------------------------------


def test_one_forger_probing_does_not_page_but_a_key_mismatch_does(
    subscribed: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a burst of 30 forged deliveries in one hour, then three ordinary hours
    for attempt in range(30):
        assert deliver(envelope("invitee.created", attempt), key="forger-key") == 401
    burst = printed_metrics(capsys)
    assert datapoint(watched_metrics(ALARMS["SignatureMismatchSurgeAlarm"])[""], burst) == 30

    # Then no page; only mismatches sustained hour after hour (a wrong key) page
    assert not fires("SignatureMismatchSurgeAlarm", [burst, [], [], []])
    assert fires("SignatureMismatchSurgeAlarm", key_mismatch(capsys, hours=3))


def test_a_poller_that_stops_running_pages_like_one_that_fails(
    subscribed: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given healthy runs: no page
    healthy = []
    for _ in range(3):
        assert poll()["ok"] is True
        healthy.append(printed_metrics(capsys))
    assert not fires("PollFailingAlarm", healthy)
    # When the schedule stops (no runs, no data): the missing periods breach
    assert fires("PollFailingAlarm", [[], [], []])


# Every event the subscription can ask for (an unknown one never arrives: Calendly sends only
# the events subscribed to, so "other" is left out of the alarm's ten metrics).
@pytest.mark.parametrize("event", sorted(KNOWN_EVENTS))
def test_one_delivery_of_any_kind_keeps_the_quiet_alarm_calm(
    event: str, subscribed: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given hours with the subscription active and nothing delivered, then one delivery
    hours = _number(ALARMS["NoDeliveriesAlarm"]["EvaluationPeriods"])
    quiet = healthy_quiet_hours(capsys, hours=hours - 1)
    assert deliver(envelope(event)) == 200
    assert ensure()["ok"] is True
    last_hour = printed_metrics(capsys)

    # Then the metric that delivery printed is one the alarm reads, and the alarm stays calm
    alarm = ALARMS["NoDeliveriesAlarm"]
    assert alarm_value(alarm, last_hour, "excused") == 1
    assert not fires("NoDeliveriesAlarm", [*quiet, last_hour])


def test_the_quiet_alarm_stays_calm_while_the_subscription_is_not_active(
    subscribed: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a day in which the check failed every hour (SubscriptionCheckFailingAlarm's page)
    hours = _number(ALARMS["NoDeliveriesAlarm"]["EvaluationPeriods"])
    failing = failing_checks(subscribed, capsys, hours=hours)
    # Then each failure is read by the alarm, and "no deliveries" does not page as well
    assert all(alarm_value(ALARMS["NoDeliveriesAlarm"], hour, "checkfailed") == 1 for hour in failing)
    assert not fires("NoDeliveriesAlarm", failing)


def test_a_stack_not_yet_connected_is_not_paged_for_silence(
    aws: LocalAws, calendly: CalendlySandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a day of hourly checks before anyone connected a token
    hours = _number(ALARMS["NoDeliveriesAlarm"]["EvaluationPeriods"])
    periods = []
    for _ in range(hours):
        assert "connect first" in ensure()["message"]
        periods.append(printed_metrics(capsys))
    # Then there is no subscription to be silent about: no page
    assert not fires("NoDeliveriesAlarm", periods)


def test_the_quiet_alarm_can_be_raised_or_switched_off() -> None:
    alarm = RESOURCES["NoDeliveriesAlarm"]
    parameter = TEMPLATE["Parameters"]["QuietHoursAlarm"]
    assert alarm["Condition"] == "QuietAlarmOn"
    assert TEMPLATE["Conditions"]["QuietAlarmOn"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "QuietHoursAlarm"}, 0]}]
    }
    assert alarm["Properties"]["EvaluationPeriods"] == alarm["Properties"]["DatapointsToAlarm"]
    assert alarm["Properties"]["EvaluationPeriods"] == {"Ref": "QuietHoursAlarm"}
    # Hourly periods: CloudWatch evaluates at most 7 days
    periods = {q["MetricStat"]["Period"] for q in alarm["Properties"]["Metrics"] if "MetricStat" in q}
    assert periods == {3600} and parameter["MinValue"] == 0 and parameter["MaxValue"] == 7 * 24


# --- the service dimension is the function's own ---------------------------------------------


def test_the_service_dimension_comes_from_the_function_s_environment() -> None:
    # Given a fresh process with the environment the template gives the receiver
    layer = Path(calendly_sync.__file__).resolve().parents[1]
    environment = {
        **os.environ,
        "PYTHONPATH": str(layer),
        "POWERTOOLS_SERVICE_NAME": service_of("ReceiveWebhookFunction"),
    }
    script = (
        "from calendly_sync.observability import metrics;"
        "metrics.add_metric(name='Deliveries', unit='Count', value=1);"
        "import json; print(json.dumps(metrics.serialize_metric_set()))"
    )
    # When the layer builds its metrics there, then its documents carry that service
    printed = subprocess.run(  # noqa: S603  # nosec B603: our own interpreter, a fixed script
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True
    ).stdout
    ((metric, _),) = emitted([json.loads(printed)])
    assert metric.dimensions == {("service", "receive-webhook")}
    assert metric.namespace == NAMESPACE


# --- AWS-namespace alarms name the right resources ------------------------------------------

AWS_METRICS = {
    "AWS/Lambda": ({"Errors", "Throttles"}, "FunctionName", "AWS::Lambda::Function"),
    "AWS/SQS": ({"ApproximateNumberOfMessagesVisible"}, "QueueName", "AWS::SQS::Queue"),
    # HTTP APIs publish by ApiId (REST APIs by ApiName); 5xx and 4xx are HTTP API metric names.
    "AWS/ApiGateway": ({"5xx"}, "ApiId", "AWS::ApiGatewayV2::Api"),
}


def _named_resource(value: Any) -> str:
    if "Ref" in value:
        name: str = value["Ref"]
        return name
    logical_id, attribute = value["Fn::GetAtt"]
    assert attribute == "QueueName"
    return str(logical_id)


@pytest.mark.parametrize(
    "alarm_id",
    sorted(a for a, p in ALARMS.items() if p.get("Namespace", NAMESPACE) not in (NAMESPACE, "AWS/Events")),
)
def test_aws_metric_alarms_name_their_resource_by_the_right_dimension(alarm_id: str) -> None:
    alarm = ALARMS[alarm_id]
    metric_names, dimension, resource_type = AWS_METRICS[alarm["Namespace"]]
    assert alarm["MetricName"] in metric_names
    (only,) = alarm["Dimensions"]
    assert only["Name"] == dimension
    translated = translated_template()["Resources"]
    assert translated[_named_resource(only["Value"])]["Type"] == resource_type


def test_the_forward_rule_alarm_names_the_rule_and_its_bus_as_eventbridge_publishes_them() -> None:
    # AWS documents (EventBridge user guide, "Monitoring"): a rule on a custom bus publishes
    # its metrics with exactly the dimensions EventBusName and RuleName (RuleName alone is the
    # default bus's, which EventBusName's pattern refuses). moto emits no AWS/Events metrics.
    (alarm_id,) = [a for a, p in ALARMS.items() if p.get("Namespace") == "AWS/Events"]
    alarm = ALARMS[alarm_id]
    rule = RESOURCES["ForwardRule"]
    assert RESOURCES[alarm_id]["Condition"] == rule["Condition"] == "Forwarding"
    assert alarm["MetricName"] == "FailedInvocations"
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert set(dimensions) == {"EventBusName", "RuleName"} and len(alarm["Dimensions"]) == 2
    assert dimensions["RuleName"] == rule["Properties"]["Name"]
    assert dimensions["EventBusName"] == rule["Properties"]["EventBusName"]
    bus_name = re.compile(TEMPLATE["Parameters"]["EventBusName"]["AllowedPattern"])
    assert bus_name.fullmatch("") and bus_name.fullmatch("team-bus") and not bus_name.fullmatch("default")


def test_every_function_has_an_errors_and_a_throttles_alarm() -> None:
    watched = {
        (p["MetricName"], _named_resource(p["Dimensions"][0]["Value"]))
        for p in ALARMS.values()
        if p.get("Namespace") == "AWS/Lambda"
    }
    assert watched == {(m, f) for f in function_ids() for m in ("Errors", "Throttles")}


def test_every_dead_letter_queue_has_an_alarm() -> None:
    queues = {k for k, v in translated_template()["Resources"].items() if v["Type"] == "AWS::SQS::Queue"}
    watched = {
        _named_resource(p["Dimensions"][0]["Value"])
        for p in ALARMS.values()
        if p.get("Namespace") == "AWS/SQS"
    }
    assert queues == watched and "WebhookSubscriptionFunctionSubscriptionCheckQueue" in queues


# --- every alarm reaches a person --------------------------------------------------------------


@pytest.mark.parametrize("alarm_id", sorted(ALARMS))
def test_every_alarm_notifies_the_topic_on_alarm_and_on_recovery(alarm_id: str) -> None:
    assert ALARMS[alarm_id]["AlarmActions"] == [TOPIC]
    assert ALARMS[alarm_id]["OKActions"] == [TOPIC]


def test_the_topic_is_the_stack_s_own_or_the_one_given_and_an_address_is_optional() -> None:
    conditions = TEMPLATE["Conditions"]
    assert conditions["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert conditions["SubscribeAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert RESOURCES["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "SubscribeAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["TopicArn"] == TOPIC
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    email = re.compile(TEMPLATE["Parameters"]["AlarmEmail"]["AllowedPattern"])
    assert (
        email.fullmatch("")
        and email.fullmatch("oncall@example.org")
        and not email.fullmatch("not an address")
    )
    arn = re.compile(TEMPLATE["Parameters"]["AlarmTopicArn"]["AllowedPattern"])
    assert arn.fullmatch("arn:aws:sns:eu-west-1:123456789012:pager") and not arn.fullmatch("pager")


def test_the_dashboard_is_an_output_and_shows_what_an_operator_needs() -> None:
    assert "OperationsDashboard" in TEMPLATE["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    body_template = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(body_template)
    text = json.dumps(body)
    for signal in (
        "Deliveries",
        "DuplicateDeliveries",
        "RejectedDeliveries",
        "5xx",
        "IteratorAge",
        "ProjectionFailureQueue",
        "PollRunsFailed",
        "PollEventsSeen",
        "PollEventsChanged",
        "CalendlyRequests",
        "CalendlyThrottled",
        "SubscriptionUnhealthy",
    ):
        assert signal in text, signal
    # Every ${...} the body substitutes is a resource or a pseudo parameter
    for name in re.findall(r"\$\{([^}]+)\}", body_template):
        assert name.startswith("AWS::") or name.split(".")[0] in translated_template()["Resources"], name
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    shown = {a.rsplit("${", 1)[1].rstrip("}") for a in alarm_widget["properties"]["alarms"]}
    assert shown == {a for a in ALARMS if "Condition" not in RESOURCES[a]}
