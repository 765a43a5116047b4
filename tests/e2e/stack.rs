//! The CloudFormation stack (`cf-templates/weir.yaml`) deployed on the local stand-in by
//! `scripts/deploy`, then the Lambda flow run against the resources it created, found by the
//! stack's outputs. The stand-in cannot run the function, so the test reads the function's
//! configuration back from it and starts the real `bootstrap` with exactly that environment,
//! playing the event source mapping the stack created (its stream and batch size).

use crate::lambda::{play_event_source_mapping, start_bootstrap};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use weir_tests::aws::{Aws, account, aws_env, check_cases, endpoint, send_test_data, unique};
use weir_tests::lambda_api::RuntimeApi;
use weir_tests::{bootstrap_bin, expected_cases, retail_wasm, workspace_root};

/// Runs a Python snippet with boto3 from `.venv` (installed with the stand-in) against
/// `endpoint`; returns its stdout.
fn python(endpoint: &str, script: &str, args: &[&str]) -> String {
    let python = workspace_root().join(".venv/bin/python");
    let mut command = Command::new(&python);
    aws_env(&mut command, endpoint);
    command
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .arg("-c")
        .arg(script)
        .args(args);
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `scripts/deploy` against `endpoint`; returns the stack's outputs.
fn deploy(endpoint: &str, stack: &str, zip: &Path, parameters: &[&str]) -> Value {
    let outputs = zip.with_file_name(format!("{stack}-outputs.json"));
    let mut command = Command::new(workspace_root().join("scripts/deploy"));
    aws_env(&mut command, endpoint);
    command
        .args(["--stack-name", stack, "--zip"])
        .arg(zip)
        .arg("--transform")
        .arg(retail_wasm())
        .arg("--outputs-file")
        .arg(&outputs)
        .args(parameters);
    let output = command.output().expect("scripts/deploy runs");
    assert!(
        output.status.success(),
        "scripts/deploy failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(outputs).expect("the outputs file")).expect("JSON")
}

/// The function's configuration and its event source mappings, as the stand-in has them.
fn read_function(endpoint: &str, name: &str) -> (Value, Value) {
    let script = r#"
import boto3, json, sys
client = boto3.client("lambda")
print(json.dumps({
    "configuration": client.get_function_configuration(FunctionName=sys.argv[1]),
    "mappings": client.list_event_source_mappings(FunctionName=sys.argv[1])["EventSourceMappings"],
}, default=str))
"#;
    let mut answer: Value = serde_json::from_str(&python(endpoint, script, &[name])).unwrap();
    (answer["configuration"].take(), answer["mappings"].take())
}

/// The function's environment as (name, value) strings (the stand-in echoes numbers unquoted).
fn environment(configuration: &Value) -> Vec<(String, String)> {
    configuration["Environment"]["Variables"]
        .as_object()
        .expect("the function has an environment")
        .iter()
        .map(|(name, value)| {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            (name.clone(), value)
        })
        .collect()
}

fn output<'a>(outputs: &'a Value, name: &str) -> &'a str {
    outputs[name]
        .as_str()
        .unwrap_or_else(|| panic!("the stack has no {name} output: {outputs}"))
}

/// The partition paths (`section=…/dt=…/hr=…`, relative to the table) the catalog's `retail`
/// table holds, from their locations.
async fn catalog_paths(aws: &Aws, database: &str) -> BTreeSet<String> {
    let partitions = aws
        .glue
        .get_partitions()
        .database_name(database)
        .table_name("retail")
        .send()
        .await
        .expect("GetPartitions")
        .partitions
        .unwrap_or_default();
    partitions
        .iter()
        .map(|p| {
            let location = p.storage_descriptor().and_then(|s| s.location()).unwrap();
            let (_, path) = location.split_once("/retail/").expect("under the table");
            path.trim_end_matches('/').to_owned()
        })
        .collect()
}

/// The template's resource `name`, as JSON (CloudFormation's tags read as null).
fn template_resource(endpoint: &str, name: &str) -> Value {
    let script = r#"
import json, sys, yaml
yaml.SafeLoader.add_multi_constructor("!", lambda loader, suffix, node: None)
template = yaml.safe_load(open(sys.argv[1]))
print(json.dumps(template["Resources"][sys.argv[2]]))
"#;
    let template = workspace_root().join("cf-templates/weir.yaml");
    serde_json::from_str(&python(
        endpoint,
        script,
        &[template.to_str().unwrap(), name],
    ))
    .unwrap()
}

/// Runs the compaction function with its stack environment (the stand-in cannot wait 25 hours,
/// so partitions count as closed at once) and the schedule's input; checks that it merged every
/// partition and kept the catalog right.
async fn compact_as_scheduled(
    aws: &Aws,
    endpoint: &str,
    outputs: &Value,
    lake: &str,
    database: &str,
    partitions: &BTreeSet<String>,
) {
    let (configuration, _) = read_function(endpoint, output(outputs, "CompactionFunctionName"));
    assert_eq!(configuration["Timeout"], 900);
    let mut env = environment(&configuration);
    assert!(
        env.contains(&("WEIR_MODE".into(), "compact".into())),
        "{env:?}"
    );
    assert!(
        env.contains(&("WEIR_CATALOG".into(), format!("glue://{database}"))),
        "{env:?}"
    );
    assert!(
        env.contains(&("WEIR_LAKE".into(), output(outputs, "LakeLocation").into())),
        "{env:?}"
    );
    env.retain(|(name, _)| name != "WEIR_COMPACT_OLDER_THAN_SECONDS");
    env.push(("WEIR_COMPACT_OLDER_THAN_SECONDS".into(), "0".into()));
    let schedule = template_resource(endpoint, "CompactionScheduleEntry");
    let input: Value =
        serde_json::from_str(schedule["Properties"]["Target"]["Input"].as_str().unwrap()).unwrap();
    let before = aws.objects(lake, "events/retail/").await;

    let api = RuntimeApi::start().await.unwrap();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let function = start_bootstrap(&api, endpoint, &env_refs);
    let started = weir_tests::unix_now();
    let answer = api.invoke(input, std::time::Duration::from_secs(120)).await;
    let (_, stderr) = function.stop();
    let answer = answer.unwrap_or_else(|i| panic!("the pass answers: {i:?}\n{stderr}"));
    assert_eq!(answer["catalog_error"], Value::Null, "{answer}");
    let after = aws.objects(lake, "events/retail/").await;
    weir_tests::check_compaction(&before, &after, &answer, (started, weir_tests::unix_now()));
    assert_eq!(&catalog_paths(aws, database).await, partitions);
}

/// The publisher policy grants one transform's versions and pointer and nothing else of the
/// bucket; the registry bucket refuses any put of a version's files without If-None-Match.
fn publishers_are_fenced_in(endpoint: &str, outputs: &Value) {
    let script = r#"
import boto3, json, sys
iam = boto3.client("iam")
policy = iam.get_policy(PolicyArn=sys.argv[1])["Policy"]
version = iam.get_policy_version(PolicyArn=sys.argv[1], VersionId=policy["DefaultVersionId"])
document = version["PolicyVersion"]["Document"]
if isinstance(document, str):
    import urllib.parse
    document = json.loads(urllib.parse.unquote(document))
print(json.dumps(document))
"#;
    let registry = output(outputs, "RegistryBucket");
    let publisher: Value = serde_json::from_str(&python(
        endpoint,
        script,
        &[output(outputs, "PublisherPolicyArn")],
    ))
    .unwrap();
    let versions = format!("arn:aws:s3:::{registry}/transforms/retail/*");
    for statement in publisher["Statement"].as_array().unwrap() {
        let resource = statement["Resource"].as_str().unwrap_or_default();
        let actions = statement["Action"].to_string();
        match statement["Effect"].as_str() {
            Some("Deny") => assert_eq!(resource, format!("arn:aws:s3:::{registry}/lambda/*")),
            _ if actions.contains("kms:") => assert!(!actions.contains("s3:"), "{statement}"),
            _ if actions.contains("ListBucket") => {
                assert_eq!(resource, format!("arn:aws:s3:::{registry}"));
                assert!(
                    statement["Condition"]
                        .to_string()
                        .contains("transforms/retail/*"),
                    "{statement}"
                );
            }
            _ => {
                assert_eq!(resource, versions, "{statement}");
                assert!(
                    !actions.contains("Delete") && !actions.contains('*'),
                    "{statement}"
                );
            }
        }
    }
    // The stand-in's CloudFormation applies no bucket policies: read it from the template.
    let bucket_policy = template_resource(endpoint, "RegistryBucketPolicy");
    let immutable = bucket_policy["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "PublishedVersionsAreImmutable")
        .expect("the registry bucket keeps versions immutable");
    assert_eq!(immutable["Effect"], "Deny");
    assert_eq!(immutable["Action"], "s3:PutObject");
    assert_eq!(
        immutable["Condition"],
        json!({ "Null": { "s3:if-none-match": "true" } })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stack_deploys_and_its_function_stores_every_record() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let work = tempfile::tempdir().unwrap();
    // The zip scripts/package-lambda makes, from this machine's bootstrap (cross builds take
    // minutes); scripts/deploy reads its architecture back from the binary.
    let zip = work.path().join("bootstrap.zip");
    python(
        &endpoint,
        "import sys, zipfile\n\
         with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as z:\n\
         \x20   z.write(sys.argv[2], 'bootstrap')",
        &[zip.to_str().unwrap(), bootstrap_bin().to_str().unwrap()],
    );
    let stack = unique("weir-stack");
    let database = stack.replace('-', "_");
    let database_parameter = format!("CatalogDatabase={database}");
    let outputs = deploy(
        &endpoint,
        &stack,
        &zip,
        &["ShardCount=2", "BatchSize=7", &database_parameter],
    );

    // The function as the template configured it.
    let function_name = output(&outputs, "FunctionName");
    let (configuration, mappings) = read_function(&endpoint, function_name);
    assert_eq!(configuration["Runtime"], "provided.al2023");
    assert_eq!(configuration["Handler"], "bootstrap");
    let env = environment(&configuration);
    let var = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} is not in the function's environment: {env:?}"))
    };
    assert_eq!(var("WEIR_LAKE"), output(&outputs, "LakeLocation"));
    assert_eq!(var("WEIR_FAILED"), output(&outputs, "FailedLocation"));
    assert_eq!(var("WEIR_REGISTRY"), output(&outputs, "TransformRegistry"));
    assert_eq!(var("WEIR_TRANSFORM"), "retail");
    assert_eq!(var("WEIR_GZIP_LEVEL"), "1");
    assert_eq!(var("WEIR_FORMAT"), "json");
    assert_eq!(output(&outputs, "CatalogDatabase"), database);
    assert_eq!(var("WEIR_CATALOG"), format!("glue://{database}"));
    // The deploy published the module to the stack's transform registry and activated it, with
    // precompiled artifacts for both Lambda architectures.
    let registry = output(&outputs, "RegistryBucket");
    let read = async |key: &str| {
        aws.s3
            .get_object()
            .bucket(registry)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key} is in the registry: {e:?}"))
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
    };
    let active: Value =
        serde_json::from_slice(&read("transforms/retail/active.json").await).unwrap();
    let version = active["version"].as_str().unwrap();
    assert!(version.starts_with("sha-"), "{version}");
    let module = read(&format!("transforms/retail/{version}/transform.wasm")).await;
    assert_eq!(module.as_ref(), std::fs::read(retail_wasm()).unwrap());
    let manifest: Value =
        serde_json::from_slice(&read(&format!("transforms/retail/{version}/manifest.json")).await)
            .unwrap();
    let artifacts = manifest["artifacts"].as_object().unwrap();
    for arch in ["x86_64-", "aarch64-"] {
        assert!(
            artifacts.keys().any(|k| k.starts_with(arch)),
            "{artifacts:?}"
        );
    }

    // The mapping: partial-batch responses, bisection, bounded retries, an S3 on-failure
    // destination in the failed bucket.
    let mappings = mappings.as_array().expect("a list of mappings");
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    let mapping = &mappings[0];
    assert_eq!(mapping["EventSourceArn"], output(&outputs, "StreamArn"));
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(mapping["BisectBatchOnFunctionError"], true);
    assert_eq!(
        mapping["DestinationConfig"]["OnFailure"]["Destination"],
        format!("arn:aws:s3:::{}", output(&outputs, "FailedBucket"))
    );
    let retries = mapping["MaximumRetryAttempts"].as_i64().unwrap();
    let max_age = mapping["MaximumRecordAgeInSeconds"].as_i64().unwrap();
    assert!(
        (0..=10_000).contains(&retries),
        "bounded retries: {retries}"
    );
    assert!((60..=604_800).contains(&max_age), "bounded age: {max_age}");
    assert_eq!(mapping["BatchSize"], 7);

    // Every bucket is encrypted with the stack's key.
    for bucket in ["LakeBucket", "FailedBucket", "RegistryBucket"] {
        let encryption = aws
            .s3
            .get_bucket_encryption()
            .bucket(output(&outputs, bucket))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{bucket} has default encryption: {e:?}"));
        let rule = &encryption
            .server_side_encryption_configuration
            .expect("an encryption configuration")
            .rules[0];
        let default = rule
            .apply_server_side_encryption_by_default
            .as_ref()
            .unwrap();
        assert_eq!(default.sse_algorithm.as_str(), "aws:kms", "{bucket}");
        assert_eq!(
            default.kms_master_key_id.as_deref(),
            Some(output(&outputs, "DataKeyArn")),
            "{bucket}"
        );
    }

    // The stand-in's CloudFormation creates no AWS::Glue::Database (nor schedules): make the
    // database the template names, as CloudFormation would.
    aws.glue
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name(&database)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // The flow: events into the stack's stream, the function with the stack's environment.
    let stream = output(&outputs, "StreamName");
    send_test_data(&endpoint, stream, &["--aggregate", "3"]);
    let api = RuntimeApi::start().await.unwrap();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let function = start_bootstrap(&api, &endpoint, &env_refs);
    let batch_size = mapping["BatchSize"].as_i64().unwrap() as i32;
    let invocations = play_event_source_mapping(&aws, &api, stream, batch_size, async |_| {}).await;
    let (_, stderr) = function.stop();
    assert!(
        invocations
            .iter()
            .all(|i| i.response["batchItemFailures"] == json!([])),
        "no storage failures: {stderr}"
    );
    assert!(
        invocations
            .iter()
            .map(|i| &i.shard)
            .any(|s| s != &invocations[0].shard),
        "both shards were read"
    );

    let sent = aws.read_stream(stream).await;
    assert_eq!(sent.len(), expected_cases().len());
    let lake = output(&outputs, "LakeBucket");
    let failed = output(&outputs, "FailedBucket");
    let objects = aws.objects(lake, "events/").await;
    let envelopes = aws.envelopes(failed, "failed/").await;
    assert_eq!(
        objects.len() + envelopes.len(),
        aws.objects(lake, "").await.len() + aws.envelopes(failed, "").await.len(),
        "nothing is written outside the prefixes the template gives"
    );
    let accounting = account(&sent, &objects, &envelopes);
    assert!(accounting.lost.is_empty(), "lost: {:?}", accounting.lost);
    assert_eq!(accounting.duplicates, 0);
    assert!(accounting.in_lake > 0 && accounting.in_failed > 0);
    assert_eq!(check_cases(&sent, &objects, &envelopes), sent.len());
    // The function registered every partition it wrote.
    let lake_partitions: BTreeSet<String> = objects
        .iter()
        .filter_map(|(key, _)| Some(key.strip_prefix("retail/")?.rsplit_once('/')?.0.to_owned()))
        .collect();
    assert_eq!(catalog_paths(&aws, &database).await, lake_partitions);

    // Scheduled compaction: the compaction function, invoked with what the schedule sends.
    compact_as_scheduled(&aws, &endpoint, &outputs, lake, &database, &lake_partitions).await;
    publishers_are_fenced_in(&endpoint, &outputs);

    // An update changes what it names and keeps the rest: same buckets and stream, the batch
    // size from before, the same artifacts (already uploaded, so not uploaded again).
    let updated = deploy(
        &endpoint,
        &stack,
        &zip,
        &["GzipLevel=6", "Format=json-zstd"],
    );
    for name in [
        "StreamArn",
        "LakeBucket",
        "FailedBucket",
        "RegistryBucket",
        "TransformRegistry",
    ] {
        assert_eq!(updated[name], outputs[name], "{name}");
    }
    let (configuration, mappings) = read_function(&endpoint, output(&updated, "FunctionName"));
    let env = environment(&configuration);
    assert!(
        env.contains(&("WEIR_GZIP_LEVEL".into(), "6".into()))
            && env.contains(&("WEIR_FORMAT".into(), "json-zstd".into())),
        "{env:?}"
    );
    assert_eq!(mappings[0]["BatchSize"], 7);
}
