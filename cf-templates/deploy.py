"""Deploys cf-templates/weir.yaml with `aws cloudformation deploy` semantics: create the stack or
update it and wait; "no changes" is a success; parameters not given keep their previous values.
(CreateStack/UpdateStack rather than change sets, which the local stand-in only half applies.)

Run through scripts/deploy, which provides boto3 from the repository's .venv. The Lambda zip
goes to the stack's registry bucket under a content-addressed key (`lambda/<sha256>/bootstrap.zip`),
so a deploy never overwrites an artifact another deploy points to. The transform is published to
the transform registry in that bucket (`s3://<bucket>/transforms`) by `weir transform publish`,
as version `sha-<first 12 hex digits of its sha256>`, with precompiled artifacts for both Lambda
architectures. A deploy activates it only when the name has no active version yet (or with
--activate): afterwards the active pointer belongs to `weir transform activate` and `rollback`,
and redeploying the stack does not undo them. A new stack is deployed in two phases: first
without code (the key, stream, buckets and log group), then, once the artifacts are uploaded,
with the function, its event source mapping, alarms and dashboard.

AWS_ENDPOINT_URL (honoured by boto3 itself) points every client at another endpoint, such as
the local stand-in the tests run; S3 is then addressed path-style.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "cf-templates" / "weir.yaml"
TEMPLATE_BODY_LIMIT = 51_200
ELF_MACHINES = {0xB7: "arm64", 0x3E: "x86_64"}


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/deploy",
        description="Upload the Lambda zip and the transform, then create or update the Weir stack.",
        epilog="PARAMETERS are template parameters as Key=Value (cf-templates/README.md lists them).",
    )
    parser.add_argument("--stack-name", required=True)
    parser.add_argument(
        "--zip",
        type=Path,
        default=ROOT / "target/lambda/bootstrap/bootstrap.zip",
        help="the Lambda zip from scripts/package-lambda (default: %(default)s)",
    )
    parser.add_argument(
        "--transform",
        type=Path,
        default=ROOT / "target/wasm32-wasip1/release/retail.wasm",
        help="the transform module (default: %(default)s)",
    )
    parser.add_argument(
        "--transform-name",
        help="its name in the registry (default: the module's file stem)",
    )
    parser.add_argument(
        "--activate",
        action="store_true",
        help="make this module the active version even if another one is active",
    )
    parser.add_argument(
        "--weir",
        type=Path,
        default=ROOT / "target/release/weir",
        help="the weir CLI that publishes the transform (default: %(default)s)",
    )
    parser.add_argument("--outputs-file", type=Path, help="also write the stack's outputs here, as JSON")
    parser.add_argument("parameters", nargs="*", metavar="PARAMETERS")
    args = parser.parse_args()

    overrides = {}
    for item in args.parameters:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"{item!r}: expected Key=Value")
        overrides[key] = value
    for managed in ("CodeKey", "TransformName"):
        if managed in overrides:
            parser.error(f"{managed} is set by the deploy from --zip and --transform(-name)")

    zip_bytes = read(args.zip, "the Lambda zip: build it with scripts/package-lambda")
    wasm_bytes = read(args.transform, "the transform: cargo build --release --target wasm32-wasip1 -p weir-transform-retail")
    architecture = zip_architecture(args.zip)
    if overrides.setdefault("Architecture", architecture) != architecture:
        sys.exit(f"{args.zip} holds an {architecture} bootstrap, but Architecture={overrides['Architecture']}")

    body = TEMPLATE.read_text()
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        sys.exit(f"{TEMPLATE} is over CloudFormation's {TEMPLATE_BODY_LIMIT}-byte TemplateBody limit")

    # boto3 reads AWS_DEFAULT_REGION; the Rust SDK and the host read AWS_REGION. Honour both.
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    s3_config = botocore.config.Config(
        s3={"addressing_style": "path"} if os.environ.get("AWS_ENDPOINT_URL") else {}
    )
    cloudformation = session.client("cloudformation")
    s3 = session.client("s3", config=s3_config)

    stack = describe(cloudformation, args.stack_name)
    if stack is None or "RegistryBucket" not in outputs_of(stack):
        log(f"{args.stack_name}: creating the key, stream, buckets and log group first")
        deploy(cloudformation, args.stack_name, body, {**overrides, "CodeKey": ""})
        stack = describe(cloudformation, args.stack_name)
    registry = outputs_of(stack)["RegistryBucket"]

    name = args.transform_name or args.transform.stem
    code_key = upload(s3, registry, "lambda/{}/bootstrap.zip", zip_bytes, "application/zip")
    publish(args.weir, f"s3://{registry}/transforms", name, args.transform, wasm_bytes, args.activate)
    deploy(
        cloudformation,
        args.stack_name,
        body,
        {**overrides, "CodeKey": code_key, "TransformName": name},
    )

    outputs = outputs_of(describe(cloudformation, args.stack_name))
    for key, value in sorted(outputs.items()):
        print(f"{key}\t{value}")
    if args.outputs_file:
        args.outputs_file.write_text(json.dumps(outputs, indent=2) + "\n")
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read(path: Path, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        sys.exit(f"cannot read {path} ({error.strerror}); {hint}")


def zip_architecture(path: Path) -> str:
    """The architecture of the `bootstrap` at the zip's root, from its ELF header."""
    with zipfile.ZipFile(path) as archive:
        try:
            header = archive.open("bootstrap").read(20)
        except KeyError:
            sys.exit(f"{path} has no bootstrap at its root")
    if header[:4] != b"\x7fELF":
        sys.exit(f"{path}: bootstrap is not an ELF executable")
    machine = int.from_bytes(header[18:20], "little")
    if machine not in ELF_MACHINES:
        sys.exit(f"{path}: bootstrap is for ELF machine {machine:#x}, neither arm64 nor x86_64")
    return ELF_MACHINES[machine]


def publish(weir: Path, registry: str, name: str, module: Path, wasm: bytes, activate: bool) -> None:
    """Publishes the module as `sha-<sha256 prefix>` unless it is already, then activates it if
    asked to or if nothing is active yet."""
    version = "sha-" + hashlib.sha256(wasm).hexdigest()[:12]
    if not weir.is_file():
        sys.exit(f"{weir} not found; build it with cargo build --release --locked --workspace --bins")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(weir), "transform", *args, "--registry", registry, "--name", name],
            capture_output=True,
            text=True,
        )
        if check and done.returncode != 0:
            sys.exit(f"weir transform {args[0]} failed:\n{done.stderr}")
        return done

    if run("show", "--version", version, check=False).returncode != 0:
        log(f"publishing {name}@{version} to {registry}")
        run("publish", "--version", version, str(module))
    active = json.loads(run("show", "--version", version).stdout)["active"]
    if activate or active is None:
        log(f"activating {name}@{version}")
        run("activate", "--version", version)
    elif active["version"] != version:
        log(f"{name}@{active['version']} stays active; {version} is published (activate it with --activate)")


def upload(s3, bucket: str, key_pattern: str, data: bytes, content_type: str) -> str:
    """Puts `data` under its sha256 unless it is there already; returns the key."""
    digest = hashlib.sha256(data).hexdigest()
    key = key_pattern.format(digest)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        log(f"s3://{bucket}/{key}: already uploaded")
    except botocore.exceptions.ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            Metadata={"sha256": digest},
        )
        log(f"s3://{bucket}/{key}: uploaded ({len(data)} bytes)")
    return key


def describe(cloudformation, name: str) -> dict | None:
    try:
        return cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except botocore.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def outputs_of(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def template_parameters(body: str) -> set[str]:
    """The template's parameter names (read here: not every endpoint's ValidateTemplate lists them)."""

    class Loader(yaml.SafeLoader):
        pass

    # Intrinsic functions (!Ref, !Sub, ...) don't matter for the names.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return set(yaml.load(body, Loader)["Parameters"])


def deploy(cloudformation, name: str, body: str, overrides: dict[str, str]) -> None:
    """Creates or updates the stack and waits for it; no changes is a success."""
    stack = describe(cloudformation, name)
    if stack is not None and stack["StackStatus"] == "ROLLBACK_COMPLETE":
        sys.exit(f"{name} failed to create (ROLLBACK_COMPLETE): delete it, then deploy again")
    declared_keys = template_parameters(body)
    unknown = set(overrides) - declared_keys
    if unknown:
        sys.exit(f"unknown template parameters: {', '.join(sorted(unknown))}")
    # Parameters not given keep their previous values. They are passed as values rather than
    # UsePreviousValue (the template has no NoEcho parameters), which the stand-in mishandles.
    previous = {p["ParameterKey"]: p["ParameterValue"] for p in (stack or {}).get("Parameters", [])}
    values = {key: value for key, value in previous.items() if key in declared_keys}
    values.update(overrides)
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())]

    request = dict(
        StackName=name,
        TemplateBody=body,
        Parameters=parameters,
        Capabilities=["CAPABILITY_IAM"],
        Tags=[{"Key": "weir:stack", "Value": name}],
    )
    try:
        if stack is None:
            log(f"{name}: creating")
            cloudformation.create_stack(**request)
        else:
            log(f"{name}: updating")
            cloudformation.update_stack(**request)
    except botocore.exceptions.ClientError as error:
        if "No updates are to be performed" in str(error):
            log(f"{name}: no changes")
            return
        raise
    while True:
        status = describe(cloudformation, name)["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        time.sleep(5)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
        for event in events:
            if event["ResourceStatus"].endswith("_FAILED"):
                log(f"  {event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}")
        sys.exit(f"{name}: {status}")
    log(f"{name}: {status}")


if __name__ == "__main__":
    sys.exit(main())
