#!/usr/bin/env python3
"""Translate infra/template.yaml (SAM) to plain CloudFormation and deploy it into moto.

moto's CloudFormation silently ignores the SAM transform, so the template is translated here with
aws-sam-translator (static managed-policy map, no AWS calls) and the result is deployed. Function
code is uploaded to a moto S3 bucket: the real zip if `target/lambda/<fn>/bootstrap.zip` exists,
else a placeholder (moto never runs Lambda code; the local stack runs the functions itself).

Prints one JSON document on stdout: stack outputs, physical ids by logical id, queue names, and the
SQS event sources (function, queue, batch size, batching window, response types) that the local
event-source emulator must honour.
"""
import io
import json
import os
import sys
import time
import zipfile

import boto3
import yaml
from samtranslator.translator.transform import transform
from samtranslator.public.exceptions import InvalidDocumentException


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form intrinsics (!Ref, !GetAtt, !Sub ...)."""


def _intrinsic(tag):
    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        key = "Ref" if tag == "Ref" else "Fn::" + tag
        return {key: value}

    return construct


for _tag in ["Ref", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
             "FindInMap", "ImportValue", "Base64", "GetAZs", "Cidr"]:
    _CfnLoader.add_constructor("!" + _tag, _intrinsic(_tag))

# The translator expands policy templates itself; it needs ARNs only for managed policy names.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


# Resource types left out of the local deployment (listed under "skipped" in the output):
# - the local stack stands in for these itself: a Function URL is an HTTP listener on 127.0.0.1, and
#   an SQS event source mapping is the event-source emulator (moto's own mapping would consume the
#   messages trying to run the function, which it cannot);
# - moto's CloudFormation cannot create these.
LOCAL_STAND_INS = {"AWS::Lambda::Url", "AWS::Lambda::EventSourceMapping", "AWS::Events::EventBus"}
MOTO_UNSUPPORTED = LOCAL_STAND_INS | {"AWS::CloudWatch::Alarm", "AWS::SQS::QueuePolicy",
                                      "AWS::Lambda::EventInvokeConfig"}


def _references(node, names):
    if isinstance(node, dict):
        if node.get("Ref") in names:
            return True
        getatt = node.get("Fn::GetAtt")
        if isinstance(getatt, list) and getatt and getatt[0] in names:
            return True
        return any(_references(v, names) for v in node.values())
    if isinstance(node, list):
        return any(_references(v, names) for v in node)
    return False


def _routes_events(resource):
    """A rule routing a bus's events by pattern: the local EventBridge stand-in serves it (moto's
    would deliver to its own queues, not to the SQS the stack uses)."""
    return resource["Type"] == "AWS::Events::Rule" and "EventPattern" in resource.get("Properties", {})


def strip_unsupported(template):
    skipped = [name for name, r in template["Resources"].items()
               if r["Type"] in MOTO_UNSUPPORTED or _routes_events(r)]
    for name in skipped:
        del template["Resources"][name]
    for name in [n for n, o in template.get("Outputs", {}).items() if _references(o, set(skipped))]:
        del template["Outputs"][name]
    return skipped


class _StaticPolicies:
    def load(self):
        return MANAGED_POLICIES


def translate(path, bucket):
    with open(path) as handle:
        sam = yaml.load(handle, Loader=_CfnLoader)
    for name, resource in sam.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{bucket}/{name}.zip"
    try:
        return transform(sam, {}, _StaticPolicies())
    except InvalidDocumentException as err:
        causes = "; ".join(str(cause) for cause in err.causes)
        sys.exit(f"deploy.py: {path} is not a valid SAM template: {causes}")


def function_zip(repo, logical_id):
    crate = logical_id.removesuffix("Function").lower()
    built = os.path.join(repo, "target", "lambda", crate, "bootstrap.zip")
    if os.path.exists(built):
        with open(built, "rb") as handle:
            return handle.read()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("bootstrap", "#!/bin/sh\necho 'placeholder: moto never runs Lambda code'\n")
    return buf.getvalue()


# The queue attributes a CreateQueue takes (the rest are computed).
QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
                    "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "RedrivePolicy",
                    "FifoQueue", "ContentBasedDeduplication", "KmsMasterKeyId")


def move_queues(queues, endpoint):
    """Creates the template's queues, as CloudFormation made them, in the SQS at `endpoint`
    (dead-letter queues first, so redrive policies point at queues that exist), then deletes them
    here so nothing can use the wrong copy."""
    here = boto3.client("sqs")
    there = boto3.client("sqs", endpoint_url=endpoint)
    made = []
    for name in queues.values():
        url = here.get_queue_url(QueueName=name)["QueueUrl"]
        attrs = here.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        made.append((name, url, {k: v for k, v in attrs.items() if k in QUEUE_ATTRIBUTES}))
    for name, url, attrs in sorted(made, key=lambda m: "RedrivePolicy" in m[2]):
        create_queue(there, name, attrs)
        here.delete_queue(QueueUrl=url)


def create_queue(sqs, name, attrs):
    """Creates a queue; a redrive policy naming a dead-letter queue created just before is, once
    in a while under load, refused by moto as unknown: try again shortly."""
    for attempt in range(20):
        try:
            sqs.create_queue(QueueName=name, Attributes=attrs)
            sqs.get_queue_url(QueueName=name)
            return
        except sqs.exceptions.QueueDoesNotExist:
            if attempt == 19:
                raise
            time.sleep(0.1)


def _resolve(template, params, value):
    """`value` with its parameter references (`Ref`, lists split at commas) resolved as deployed,
    and `Fn::GetAtt` of a resource left as `{"resource": <logical id>}`."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        declared = template.get("Parameters", {}).get(name)
        if declared is None:
            return {"resource": name}
        got = params.get(name, declared.get("Default"))
        if declared.get("Type") == "CommaDelimitedList" and isinstance(got, str):
            return [v.strip() for v in got.split(",") if v.strip()]
        return got
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        mapping, top, second = (_resolve(template, params, v) for v in value["Fn::FindInMap"])
        return template["Mappings"][mapping][top][second]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return {"resource": value["Fn::GetAtt"][0]}
    if isinstance(value, dict):
        return {k: _resolve(template, params, v) for k, v in value.items()}
    if isinstance(value, list):
        out = []
        for v in value:
            r = _resolve(template, params, v)
            # A list parameter inside a list (`[!Ref List]`) is its values.
            out.extend(r if isinstance(r, list) and isinstance(v, dict) and "Ref" in v else [r])
        return out
    return value


def event_rules(template, params, queues):
    """The rules routing an event bus's events to queues, as deployed (condition, parameters and
    queue names resolved), for the local EventBridge stand-in to serve."""
    conditions = {"HasSalesforceEvents": bool(params.get("SalesforceEventBusName"))}
    found = []
    for name, resource in template["Resources"].items():
        if not _routes_events(resource):
            continue
        if not conditions.get(resource.get("Condition"), True):
            continue
        props = resource["Properties"]
        bus = _resolve(template, params, props.get("EventBusName", "default"))
        if isinstance(bus, dict):
            bus_resource = template["Resources"][bus["resource"]]
            bus = _resolve(template, params, bus_resource["Properties"]["Name"])
        targets = []
        for target in props.get("Targets", []):
            arn = _resolve(template, params, target["Arn"])
            dlq = _resolve(template, params, target.get("DeadLetterConfig", {}).get("Arn"))
            targets.append({
                "queue": queues[arn["resource"]],
                "dead_letter_queue": queues[dlq["resource"]] if isinstance(dlq, dict) else None,
            })
        found.append({
            "rule": name,
            "bus": bus,
            "pattern": _resolve(template, params, props["EventPattern"]),
            "targets": targets,
        })
    return found


def schedules(template, params):
    """The EventBridge schedules of the template: which function each invokes, at what rate or
    cron expression (parameters resolved as deployed) and with what input, for the local stack
    to fire them."""
    def resolve(value):
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            return params.get(name, template.get("Parameters", {}).get(name, {}).get("Default"))
        return value

    found = []
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::Events::Rule" or "ScheduleExpression" not in props:
            continue
        for target in props.get("Targets", []):
            arn = target.get("Arn", {})
            function = arn.get("Fn::GetAtt", [None])[0] if isinstance(arn, dict) else None
            found.append({
                "rule": name,
                "function": function,
                "expression": resolve(props["ScheduleExpression"]),
                "input": target.get("Input", "{}"),
            })
    return found


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    template_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, "infra", "template.yaml")
    stack = os.environ.get("STACK_NAME", "gs-sf-sync")
    params = json.loads(os.environ.get("STACK_PARAMETERS", "{}"))
    deployed = deploy(repo, template_path, stack, params)
    del deployed["template"]
    print(json.dumps(deployed))


def event_source(name, props, queue):
    """The settings of SQS event source mapping `name` (its template properties) reading
    `queue`, refused as Lambda's CreateEventSourceMapping refuses them: a standard queue's batch
    of more than 10 messages needs a batching window of at least 1 s."""
    batch_size = props.get("BatchSize", 10)
    window = props.get("MaximumBatchingWindowInSeconds", 0)
    if batch_size > 10 and window < 1:
        raise ValueError(
            f"{name}: BatchSize {batch_size} needs MaximumBatchingWindowInSeconds of at least 1 "
            "(Lambda refuses a batch of more than 10 SQS messages without a batching window)")
    return {
        "function": props["FunctionName"]["resource"],
        "queue": queue,
        "batch_size": batch_size,
        "batching_window_seconds": window,
        "report_batch_item_failures": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        # Without a ScalingConfig Lambda may run up to 1,000 batches at once; locally the
        # template's maximum, else 5 (the pollers Lambda starts with).
        "maximum_concurrency": props.get("ScalingConfig", {}).get("MaximumConcurrency", 5),
    }


def deploy(repo, template_path, stack, params):
    """Translates and deploys the template; what was deployed, with the whole translated template
    (including what the local deployment leaves out) under "template"."""
    bucket = f"{stack}-artifacts"

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    cfn_template = translate(template_path, bucket)
    for name, resource in cfn_template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            s3.put_object(Bucket=bucket, Key=f"{name}.zip", Body=function_zip(repo, name))

    full_template = json.loads(json.dumps(cfn_template))
    skipped = strip_unsupported(cfn_template)
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    deadline = time.time() + 60
    while True:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if status["StackStatus"].endswith("_COMPLETE") or status["StackStatus"].endswith("_FAILED"):
            break
        if time.time() > deadline:
            sys.exit(f"deploy.py: stack {stack} still {status['StackStatus']} after 60 s")
        time.sleep(0.2)
    if status["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                   if "FAILED" in e["ResourceStatus"]]
        sys.exit(f"deploy.py: stack {stack} ended {status['StackStatus']}: {reasons}")

    # moto lists a resource whose Condition is false as an entry without a logical id: not created.
    resources = {r["LogicalResourceId"]: {"type": r["ResourceType"], "id": r.get("PhysicalResourceId")}
                 for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
                 if "LogicalResourceId" in r}
    # Physical ids of queues are URLs on real AWS hosts; the name is the last path segment and is
    # what callers resolve with GetQueueUrl against the endpoint they actually use.
    queues = {name: r["id"].rstrip("/").rsplit("/", 1)[-1]
              for name, r in resources.items() if r["type"] == "AWS::SQS::Queue"}

    sqs_endpoint = os.environ.get("SQS_ENDPOINT")
    if sqs_endpoint:
        move_queues(queues, sqs_endpoint)

    event_sources = []
    for name, resource in full_template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        props = _resolve(full_template, params, resource["Properties"])
        event_sources.append(event_source(name, props, queues[props["EventSourceArn"]["resource"]]))

    # Each function's timeout in seconds, Globals applied (Lambda's default is 3 s): the local
    # Runtime API gives an invocation the deadline Lambda would.
    timeouts = {name: r["Properties"].get("Timeout", 3) for name, r in full_template["Resources"].items()
                if r["Type"] == "AWS::Lambda::Function"}

    # The functions whose concurrency is reserved: the local Function URL throttles beyond it,
    # as Lambda does.
    concurrency = {name: int(_resolve(full_template, params, r["Properties"]["ReservedConcurrentExecutions"]))
                   for name, r in full_template["Resources"].items()
                   if r["Type"] == "AWS::Lambda::Function"
                   and "ReservedConcurrentExecutions" in r["Properties"]}

    outputs = {o["OutputKey"]: o["OutputValue"] for o in status.get("Outputs", [])}
    return {
        "timeouts": timeouts,
        "reserved_concurrency": concurrency,
        "schedules": schedules(full_template, params),
        "event_rules": event_rules(full_template, params, queues),
        "stack": stack,
        "outputs": outputs,
        "resources": resources,
        "queues": queues,
        "event_sources": event_sources,
        "skipped": skipped,
        "template": full_template,
    }


if __name__ == "__main__":
    main()
