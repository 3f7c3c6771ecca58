#!/usr/bin/env python3
"""infra/template.yaml translated (aws-sam-translator) and deployed into moto's CloudFormation, then
checked as an admin would check a real deployment: every function with its role, environment,
runtime and sizing; the SQS event sources with their batch settings; one schedule per job file;
the alarms and dashboard; the outputs; and each function's IAM policy against
infra/permissions.yaml (exactly what the code calls, on specific ARNs). Run by `make test`:
`.venv/bin/python devstack/test_deployment.py`.
"""
import ast
import contextlib
import glob
import io
import json
import re
import os
import sys
import unittest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "SQS_ENDPOINT"):
    os.environ.pop(name, None)

import boto3  # noqa: E402
import yaml  # noqa: E402
from moto import mock_aws  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import deploy  # noqa: E402

FUNCTIONS = ["WebhookFunction", "PollerFunction", "MapperFunction", "PusherFunction", "ResyncFunction"]
# The data-plane actions on the product's own resources; the rest (logs, X-Ray, the SQS event
# sources' receive/delete) SAM grants the Lambda runtime itself.
OWN = ("dynamodb:", "kms:", "sqs:SendMessage", "lambda:InvokeFunction")


def job_names():
    names = []
    for path in sorted(glob.glob(os.path.join(REPO, "infra", "jobs", "*.yaml"))):
        with open(path) as handle:
            names.append(yaml.safe_load(handle)["name"])
    return names


def job_schedules():
    schedules = {}
    for path in sorted(glob.glob(os.path.join(REPO, "infra", "jobs", "*.yaml"))):
        with open(path) as handle:
            job = yaml.safe_load(handle)
        schedules[job["name"]] = job["schedule"]
    return schedules


def policy_document(document):
    """A role policy as IAM returns it: JSON (URL-decoded by boto3), or, from a role moto's
    CloudFormation made, the Python text of the dict."""
    if isinstance(document, dict):
        return document
    try:
        return json.loads(document)
    except json.JSONDecodeError:
        return ast.literal_eval(document)


def actions_of(statement):
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


class Deployment(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = mock_aws()
        cls.mock.start()
        with contextlib.redirect_stdout(io.StringIO()):
            cls.deployed = deploy.deploy(REPO, os.path.join(REPO, "infra", "template.yaml"),
                                         "gs-sf-sync", {})
        cls.template = cls.deployed["template"]
        cls.lam = boto3.client("lambda")
        cls.iam = boto3.client("iam")
        with open(os.path.join(REPO, "infra", "permissions.yaml")) as handle:
            cls.permissions = yaml.safe_load(handle)

    @classmethod
    def tearDownClass(cls):
        cls.mock.stop()

    def physical(self, logical):
        return self.deployed["resources"][logical]["id"]

    def test_every_function_with_its_runtime_role_environment_and_sizing(self):
        table = self.deployed["outputs"]["StateTableName"]
        for logical in FUNCTIONS:
            config = self.lam.get_function(FunctionName=self.physical(logical))["Configuration"]
            self.assertEqual(config["Runtime"], "provided.al2023", logical)
            # moto's CloudFormation does not pass the architecture, tracing or logging format on
            # (it reports x86_64 and PassThrough): those are read from the translated template.
            props = self.template["Resources"][logical]["Properties"]
            self.assertEqual(props["Architectures"], ["arm64"], logical)
            self.assertEqual(props["TracingConfig"], {"Mode": {"Ref": "Tracing"}}, logical)
            self.assertEqual(config["Handler"], "bootstrap", logical)
            self.assertTrue(config["Role"].endswith(self.physical(logical + "Role")), logical)
            env = config["Environment"]["Variables"]
            self.assertEqual(env["TABLE_NAME"], table, logical)
            for name in ("KMS_KEY_ID", "CHANGES_QUEUE_URL", "WRITES_QUEUE_URL", "RUN_TTL_DAYS",
                         "SALESFORCE_LOGIN_URL", "GAINSIGHT_BASE_URL", "RUST_LOG"):
                self.assertIn(name, env, logical)
            self.assertEqual(props["LoggingConfig"], {"LogFormat": "JSON"}, logical)
        sizing = {}
        for f in FUNCTIONS:
            config = self.lam.get_function(FunctionName=self.physical(f))["Configuration"]
            sizing[f] = (config["MemorySize"], config["Timeout"])
        self.assertEqual(sizing, {"WebhookFunction": (128, 30), "PollerFunction": (256, 300),
                                  "MapperFunction": (256, 30), "PusherFunction": (256, 120),
                                  "ResyncFunction": (1024, 900)})
        # The resync function keeps a first load's records in its ephemeral storage (moto's
        # CloudFormation drops the property, so the template is what is checked).
        scratch = self.template["Resources"]["ResyncFunction"]["Properties"]["EphemeralStorage"]
        self.assertEqual(scratch, {"Size": {"Ref": "ResyncScratchMB"}})
        self.assertEqual(self.template["Parameters"]["ResyncScratchMB"]["Default"], 1024)

    def test_the_public_endpoint_has_a_concurrency_of_its_own(self):
        props = self.template["Resources"]["WebhookFunction"]["Properties"]
        self.assertEqual(props["ReservedConcurrentExecutions"], {"Ref": "WebhookConcurrency"})
        self.assertEqual(self.template["Parameters"]["WebhookConcurrency"]["Default"], 100)
        # Only the webhook's is reserved: the others share the account's pool.
        self.assertEqual(self.deployed["reserved_concurrency"], {"WebhookFunction": 100})

    def test_queues_have_dlqs_and_outlast_their_consumers(self):
        sqs = boto3.client("sqs")
        consumers = {"ChangesQueue": "MapperFunction", "WritesQueue": "PusherFunction"}
        for queue, consumer in consumers.items():
            url = sqs.get_queue_url(QueueName=self.deployed["queues"][queue])["QueueUrl"]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            timeout = self.lam.get_function(FunctionName=self.physical(consumer))["Configuration"]["Timeout"]
            self.assertGreaterEqual(int(attrs["VisibilityTimeout"]), 6 * timeout, queue)
            self.assertIn("deadLetterTargetArn", json.loads(attrs["RedrivePolicy"]), queue)

    def test_event_sources_report_batch_item_failures_with_their_batch_settings(self):
        sources = {s["function"]: s for s in self.deployed["event_sources"]}
        self.assertEqual(set(sources), {"MapperFunction", "PusherFunction"})
        mapper, pusher = sources["MapperFunction"], sources["PusherFunction"]
        self.assertEqual((mapper["batch_size"], mapper["batching_window_seconds"],
                          mapper["maximum_concurrency"]), (10, 0, 10))
        self.assertEqual((pusher["batch_size"], pusher["batching_window_seconds"],
                          pusher["maximum_concurrency"]), (1000, 1, 5))
        self.assertTrue(mapper["report_batch_item_failures"] and pusher["report_batch_item_failures"])
        self.assertEqual(mapper["queue"], self.deployed["queues"]["ChangesQueue"])
        self.assertEqual(pusher["queue"], self.deployed["queues"]["WritesQueue"])

    def test_changes_batching_trades_freshness_for_fewer_requests(self):
        [props] = [r["Properties"] for r in self.template["Resources"].values()
                   if r["Type"] == "AWS::Lambda::EventSourceMapping"
                   and r["Properties"]["FunctionName"] == {"Ref": "MapperFunction"}]
        settings = {}
        for batching in ("fresh", "batched"):
            resolved = deploy._resolve(self.template, {"ChangesBatching": batching}, props)
            source = deploy.event_source("Changes", resolved, "changes")
            settings[batching] = (source["batch_size"], source["batching_window_seconds"])
        self.assertEqual(settings, {"fresh": (10, 0), "batched": (100, 1)})

    def test_a_batch_larger_than_lambda_takes_without_a_window_is_refused(self):
        props = {"FunctionName": {"resource": "MapperFunction"}, "BatchSize": 100,
                 "MaximumBatchingWindowInSeconds": 0}
        with self.assertRaisesRegex(ValueError, "Changes: BatchSize 100 needs MaximumBatchingWindowInSeconds"):
            deploy.event_source("Changes", props, "changes")
        props["MaximumBatchingWindowInSeconds"] = 1
        self.assertEqual(deploy.event_source("Changes", props, "changes")["batch_size"], 100)

    def test_the_pusher_knows_when_a_write_reaches_the_dead_letter_queue(self):
        resources = self.template["Resources"]
        redrive = resources["WritesQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        pusher = resources["PusherFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(int(pusher["WRITES_MAX_RECEIVE_COUNT"]), int(redrive))

    def test_the_mapper_knows_when_a_change_reaches_the_dead_letter_queue(self):
        resources = self.template["Resources"]
        redrive = resources["ChangesQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        mapper = resources["MapperFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(int(mapper["CHANGES_MAX_RECEIVE_COUNT"]), int(redrive))

    def test_one_schedule_per_job_file(self):
        events = boto3.client("events")
        poller_arn = self.lam.get_function(
            FunctionName=self.physical("PollerFunction"))["Configuration"]["FunctionArn"]
        scheduled = []
        for rule in events.list_rules()["Rules"]:
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                self.assertEqual(target["Arn"], poller_arn)
                self.assertTrue(rule["ScheduleExpression"].startswith(("rate(", "cron(")))
                scheduled.append(json.loads(target["Input"])["job"])
        self.assertEqual(sorted(scheduled), job_names())
        # Each job file names its rate; the template's parameter defaults to it.
        params = self.template["Parameters"]
        for name, schedule in job_schedules().items():
            param = "".join(w.capitalize() for w in name.split("_")) + "PollRate"
            self.assertEqual(params[param]["Default"], schedule, name)
        # A poll EventBridge cannot deliver, or that fails after Lambda's retries, is kept.
        resources = self.template["Resources"]
        rules = [r["Properties"] for r in resources.values()
                 if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"]]
        for rule in rules:
            dlq = rule["Targets"][0]["DeadLetterConfig"]["Arn"]
            self.assertEqual(dlq, {"Fn::GetAtt": ["PollerDeadLetterQueue", "Arn"]})
        # Only those rules may send there: the queue's policy names each as the source.
        names = sorted(n for n, r in resources.items()
                       if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"])
        policy = resources["PollerDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
        [statement] = policy["Statement"]
        sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        self.assertEqual(sorted(s["Fn::GetAtt"][0] for s in sources), names)
        self.assertEqual(len(names), len(job_names()))
        invoke = [r["Properties"] for r in resources.values()
                  if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
        self.assertEqual(invoke[0]["DestinationConfig"]["OnFailure"]["Destination"],
                         {"Fn::GetAtt": ["PollerDeadLetterQueue", "Arn"]})

    def test_change_data_capture_is_off_by_default_and_routes_change_events_when_on(self):
        # Off (no event bus named): nothing of it is created.
        self.assertNotIn("SalesforceEventsDeadLetterQueue", self.deployed["queues"])
        self.assertEqual(self.deployed["event_rules"], [])
        # On: the partner bus's change events of the jobs' objects, but the integration user's,
        # go straight to the changes queue; what cannot be delivered to its own DLQ, alarmed.
        bus = "aws.partner/salesforce.com/00D000000000001AAA/0YL000000000001AAA"
        params = {"SalesforceEventBusName": bus, "SalesforceIntegrationUserId": "005000000000001AAA"}
        queues = {"ChangesQueue": "changes", "SalesforceEventsDeadLetterQueue": "sf-dlq"}
        rules = deploy.event_rules(self.template, params, queues)
        self.assertEqual(len(rules), 1)
        rule = rules[0]
        self.assertEqual(rule["bus"], bus)
        self.assertEqual(rule["pattern"]["detail-type"],
                         ["AccountChangeEvent", "ContactChangeEvent", "CaseChangeEvent"])
        commit_user = rule["pattern"]["detail"]["payload"]["ChangeEventHeader"]["commitUser"]
        self.assertEqual(commit_user, [{"anything-but": ["005000000000001AAA"]}])
        self.assertEqual(rule["targets"], [{"queue": "changes", "dead_letter_queue": "sf-dlq"}])
        resources = self.template["Resources"]
        self.assertEqual(resources["SalesforceEventBus"]["Properties"]["EventSourceName"],
                         {"Ref": "SalesforceEventBusName"})
        alarm = resources["SalesforceEventsDeadLetterAlarm"]["Properties"]
        self.assertEqual(alarm["Dimensions"][0]["Value"],
                         {"Fn::GetAtt": ["SalesforceEventsDeadLetterQueue", "QueueName"]})
        policy = resources["SalesforceEventsQueuePolicy"]["Properties"]["PolicyDocument"]
        statement = policy["Statement"][0]
        self.assertEqual(statement["Principal"], {"Service": "events.amazonaws.com"})
        self.assertEqual(statement["Condition"]["ArnEquals"]["aws:SourceArn"],
                         {"Fn::GetAtt": ["SalesforceChangeEventsRule", "Arn"]})

    def test_alarms_and_dashboard(self):
        resources = self.template["Resources"]
        alarms = {name: r["Properties"] for name, r in resources.items()
                  if r["Type"] == "AWS::CloudWatch::Alarm"}
        by_metric = {}
        for props in alarms.values():
            self.assertEqual(props["AlarmActions"], [{"Ref": "AlarmTopic"}])
            dims = {d["Name"]: json.dumps(d["Value"]) for d in props.get("Dimensions", [])}
            by_metric.setdefault(props["MetricName"], []).extend(dims.values())
        for logical in FUNCTIONS:
            for metric in ("Errors", "Throttles"):
                self.assertIn(json.dumps({"Ref": logical}), by_metric[metric], (logical, metric))
        dlqs = " ".join(by_metric["ApproximateNumberOfMessagesVisible"])
        self.assertIn("ChangesDeadLetterQueue", dlqs)
        self.assertIn("WritesDeadLetterQueue", dlqs)
        self.assertIn("PollerDeadLetterQueue", dlqs)
        ages = " ".join(by_metric["ApproximateAgeOfOldestMessage"])
        self.assertIn("\"ChangesQueue\"", ages)
        self.assertIn("\"WritesQueue\"", ages)
        dashboards = boto3.client("cloudwatch").list_dashboards()["DashboardEntries"]
        self.assertEqual(len(dashboards), 1)
        # A deactivated job: the pusher's "job deactivated" log line, counted and alarmed on.
        deactivated = alarms["JobDeactivatedAlarm"]
        self.assertEqual(deactivated["MetricName"], "JobsDeactivated")
        metric_filter = resources["JobDeactivatedMetricFilter"]["Properties"]
        self.assertEqual(metric_filter["LogGroupName"], {"Ref": "PusherLogGroup"})
        self.assertEqual(metric_filter["FilterPattern"], '{ $.fields.message = "job deactivated" }')
        transform = metric_filter["MetricTransformations"][0]
        self.assertEqual((transform["MetricName"], transform["MetricNamespace"]),
                         (deactivated["MetricName"], deactivated["Namespace"]))

    def test_what_holds_data_survives_a_replacement_or_a_deleted_stack(self):
        resources = self.template["Resources"]
        for logical in ("StateTable", "SecretsKey", "ChangesQueue", "WritesQueue",
                        "ChangesDeadLetterQueue", "WritesDeadLetterQueue"):
            resource = resources[logical]
            self.assertEqual(resource.get("DeletionPolicy"), "Retain", logical)
            self.assertEqual(resource.get("UpdateReplacePolicy"), "Retain", logical)

    def test_outputs(self):
        deployed = set(self.deployed["outputs"])
        for name in ("StateTableName", "SecretsKeyId", "SecretsKeyAlias", "ChangesQueueUrl",
                     "WritesQueueUrl", "ResyncFunctionName", "PollerFunctionName", "AlarmTopicArn",
                     "DashboardUrl"):
            self.assertIn(name, deployed)
        # The Function URL is left out of the local deployment; its output is in the template.
        self.assertIn("WebhookUrl", self.template["Outputs"])

    def test_each_role_grants_exactly_what_permissions_yaml_lists_on_specific_resources(self):
        for logical in FUNCTIONS:
            role = self.physical(logical + "Role")
            granted = set()
            for policy in self.iam.list_role_policies(RoleName=role)["PolicyNames"]:
                document = self.iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
                document = policy_document(document)
                for statement in document["Statement"]:
                    own = [a for a in actions_of(statement) if a.startswith(OWN)]
                    granted.update(own)
                    resources = statement["Resource"]
                    resources = [resources] if isinstance(resources, str) else resources
                    if own:
                        self.assertNotIn("*", resources, (logical, statement))
            self.assertEqual(granted, set(self.permissions[logical]), logical)
            self.assertNotIn("kms:Encrypt", granted, logical)

    def test_each_role_decrypts_only_its_secrets_and_the_webhook_reaches_only_its_items(self):
        with open(os.path.join(REPO, "infra", "scopes.yaml")) as handle:
            scopes = yaml.safe_load(handle)
        with open(os.path.join(REPO, "shared", "src", "secret.rs")) as handle:
            names = set(re.findall(r'pub const [A-Z_]+: &str = "([a-z-]+)";', handle.read()))
        self.assertEqual(set(scopes), set(FUNCTIONS))
        for logical in FUNCTIONS:
            scope = scopes[logical]
            self.assertLessEqual(set(scope["secrets"]), names, logical)
            role = self.physical(logical + "Role")
            checked = []
            for policy in self.iam.list_role_policies(RoleName=role)["PolicyNames"]:
                document = self.iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
                for statement in policy_document(document)["Statement"]:
                    actions = actions_of(statement)
                    condition = statement.get("Condition", {})
                    if "kms:Decrypt" in actions:
                        contexts = condition["StringEquals"]["kms:EncryptionContext:secret"]
                        self.assertEqual(sorted(contexts), sorted(scope["secrets"]), logical)
                        checked.append("kms")
                    if any(a.startswith("dynamodb:") for a in actions) and "table_keys" in scope:
                        keys = condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                        self.assertEqual(sorted(keys), sorted(scope["table_keys"]), logical)
                        checked.append("dynamodb")
            want = ["kms", "dynamodb"] if "table_keys" in scope else ["kms"]
            self.assertEqual(sorted(checked), sorted(want), logical)


if __name__ == "__main__":
    unittest.main(verbosity=2)
