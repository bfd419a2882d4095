//! The deployment files agree with the code.
//!
//! - Every environment variable of the code's `vars` modules (event-log,
//!   edge-gateway, functions, broker-relay) is classified in [`VARIABLES`]: which binaries
//!   read it, and for which the SAM template declares it — or why the cloud
//!   must not set it. A new constant fails here until it is classified.
//! - The template declares exactly those, per deployed binary, and its
//!   values pass the binaries' own configuration parsers.
//! - Secrets are only ever references to Secrets Manager.
//! - Triggers, ports and timeouts match what the code expects.
//! - The compose file sets only names its binaries read.
//! - `samconfig.toml` sets only template parameters, with allowed values.

use std::collections::{BTreeMap, BTreeSet};

use broker_relay::config::vars as relay;
use e2e_tests::template::{self, Setting, Template};
use e2e_tests::{compose, samconfig, vars, workspace};
use edge_gateway::config::vars as gateway;
use event_log::backend::vars as log;
use functions::config::vars as func;
use functions::Function;
use serde_norway::Value;

// The deployed binaries: the gateway and relay containers and the Lambda
// functions (`functions/src/bin`).
const GATEWAY: &str = "edge-gateway";
const RELAY: &str = "broker-relay";
const WEBHOOK: &str = "broker-webhook";
const COMPLETIONS: &str = "queue-completions";
const PRICES: &str = "price-ticks";
const LINKS: &str = "account-links";
const SYNC: &str = "position-sync";
const EVERY_BINARY: &[&str] = &[GATEWAY, RELAY, WEBHOOK, COMPLETIONS, PRICES, LINKS, SYNC];
const EVENT_LOG_READERS: &[&str] = &[GATEWAY, WEBHOOK, COMPLETIONS, PRICES, LINKS, SYNC];
const ALL_FUNCTIONS: &[&str] = &[WEBHOOK, COMPLETIONS, PRICES, LINKS, SYNC];
const HTTP_FUNCTIONS: &[&str] = &[WEBHOOK, PRICES, LINKS, SYNC];
const BROKER_CALLERS: &[&str] = &[WEBHOOK, SYNC, RELAY];

/// The crates whose `vars` modules name what the deployed binaries read.
const CRATES: [&str; 4] = ["event-log", "edge-gateway", "functions", "broker-relay"];

/// Which code reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// The gateway binary.
    Gateway,
    /// The function binaries (and `functions-local`).
    Functions,
    /// The gateway and the functions.
    Both,
    /// The broker relay.
    Relay,
    /// The functions and the relay (signing secrets, the Alpaca API).
    FunctionsAndRelay,
}

impl Reader {
    /// Whether the compose service of `binary` (a reader itself) reads it.
    fn includes(self, binary: Reader) -> bool {
        self == binary
            || matches!(
                (self, binary),
                (Reader::Both, Reader::Gateway | Reader::Functions)
                    | (Reader::FunctionsAndRelay, Reader::Functions | Reader::Relay)
            )
    }
}

/// What the cloud stack does with a variable.
#[derive(Debug, Clone, Copy)]
enum Cloud {
    /// Declared in the template for exactly these binaries.
    Declared(&'static [&'static str]),
    /// Never set in the cloud, for this reason.
    Absent(&'static str),
}

use Cloud::{Absent, Declared};
use Reader::{Both, Functions, FunctionsAndRelay, Gateway, Relay};

const NO_SECRET_FILES: &str =
    "Fargate and Lambda mount no secret files: the value itself comes from Secrets Manager instead";

/// Every constant of the `vars` modules, classified.
const VARIABLES: &[(&str, Reader, Cloud)] = &[
    // The event log: everyone, with the same values (one Mapping in the template).
    // (The relay holds no Redis credentials: it speaks to the functions.)
    (log::REDIS_URL, Both, Declared(EVENT_LOG_READERS)),
    (log::STREAM_MAXLEN, Both, Declared(EVENT_LOG_READERS)),
    (log::DEDUPE_TTL_SECS, Both, Declared(EVENT_LOG_READERS)),
    (log::REDIS_COMMAND_TIMEOUT_MS, Both, Declared(EVENT_LOG_READERS)),
    (log::REDIS_WAIT_REPLICAS, Both, Declared(EVENT_LOG_READERS)),
    (log::REDIS_WAIT_TIMEOUT_MS, Both, Declared(EVENT_LOG_READERS)),
    // Token checks: the gateway.
    (gateway::JWT_ALGORITHM, Gateway, Declared(&[GATEWAY])),
    (gateway::JWT_SECRET, Gateway, Declared(&[GATEWAY])),
    (gateway::JWT_SECRET_FILE, Gateway, Absent(NO_SECRET_FILES)),
    (
        gateway::JWT_PUBLIC_KEY_FILE,
        Gateway,
        Absent("the stack uses HS256; RS256/ES256 would need the public key mounted as a file"),
    ),
    (gateway::JWT_ISSUER, Gateway, Declared(&[GATEWAY])),
    (gateway::JWT_AUDIENCE, Gateway, Declared(&[GATEWAY])),
    (gateway::JWT_LEEWAY_SECS, Gateway, Declared(&[GATEWAY])),
    // The ingest functions.
    (func::FUNCTIONS_ADDR, Functions, Absent("local HTTP mode only; on Lambda the binaries serve the runtime API")),
    (func::AWS_LAMBDA_RUNTIME_API, Functions, Absent("set by Lambda itself; reserved, a template cannot set it")),
    (func::WEBHOOK_SECRET, FunctionsAndRelay, Declared(&[WEBHOOK, RELAY])),
    (func::WEBHOOK_SECRET_FILE, FunctionsAndRelay, Absent(NO_SECRET_FILES)),
    // Completions arrive over SQS in the cloud: IAM, not a signature.
    (func::INGEST_SECRET, FunctionsAndRelay, Declared(&[PRICES, LINKS, SYNC, RELAY])),
    (func::INGEST_SECRET_FILE, FunctionsAndRelay, Absent(NO_SECRET_FILES)),
    (func::SIGNATURE_TOLERANCE_SECS, Functions, Declared(HTTP_FUNCTIONS)),
    (func::FUNCTIONS_MAX_BODY_BYTES, Functions, Declared(HTTP_FUNCTIONS)),
    (func::MAX_TICKS_PER_BATCH, Functions, Declared(&[PRICES])),
    (func::APCA_API_BASE_URL, FunctionsAndRelay, Declared(BROKER_CALLERS)),
    (func::APCA_API_KEY_ID, FunctionsAndRelay, Declared(BROKER_CALLERS)),
    (func::APCA_API_SECRET_KEY, FunctionsAndRelay, Declared(BROKER_CALLERS)),
    (func::APCA_API_SECRET_KEY_FILE, FunctionsAndRelay, Absent(NO_SECRET_FILES)),
    (func::BROKER_TIMEOUT_MS, Functions, Declared(&[WEBHOOK, SYNC])),
    (func::FUNCTIONS_LOG, Functions, Declared(ALL_FUNCTIONS)),
    // The broker relay.
    (relay::RELAY_ADDR, Relay, Declared(&[RELAY])),
    (relay::FUNCTIONS_URL, Relay, Declared(&[RELAY])),
    (
        relay::APCA_STREAM_URL,
        Relay,
        Absent("derived from APCA_API_BASE_URL (wss://…/stream), which the template sets; set only for a fake"),
    ),
    (relay::APCA_DATA_STREAM_URL, Relay, Declared(&[RELAY])),
    (relay::RELAY_ACCOUNT_ID, Relay, Absent("read from GET /v2/account at start: the keys name their account")),
    (relay::RELAY_SYMBOLS, Relay, Declared(&[RELAY])),
    (relay::RELAY_TICK_INTERVAL_MS, Relay, Declared(&[RELAY])),
    (relay::RELAY_SYNC_INTERVAL_SECS, Relay, Declared(&[RELAY])),
    (relay::RELAY_BACKFILL_LOOKBACK_SECS, Relay, Declared(&[RELAY])),
    (relay::RELAY_LOG, Relay, Declared(&[RELAY])),
    // The gateway.
    (gateway::GATEWAY_ADDR, Gateway, Declared(&[GATEWAY])),
    (gateway::ALLOWED_ORIGINS, Gateway, Declared(&[GATEWAY])),
    (gateway::THROTTLE_WINDOW_MS, Gateway, Declared(&[GATEWAY])),
    (gateway::DIFF_THRESHOLD, Gateway, Declared(&[GATEWAY])),
    (gateway::DIFF_SETTLE_MS, Gateway, Declared(&[GATEWAY])),
    (gateway::SEND_QUEUE, Gateway, Declared(&[GATEWAY])),
    (gateway::MAX_MESSAGE_BYTES, Gateway, Declared(&[GATEWAY])),
    (gateway::ENABLE_REALTIME_PORTFOLIO, Gateway, Declared(&[GATEWAY])),
    (gateway::LOG_FORMAT, Gateway, Declared(&[GATEWAY])),
    (gateway::ROLLOUT_PERCENT, Gateway, Declared(&[GATEWAY])),
    (gateway::ROLLOUT_USERS, Gateway, Declared(&[GATEWAY])),
    (gateway::MAX_CONNECTIONS_PER_USER, Gateway, Declared(&[GATEWAY])),
    (gateway::MAX_CONNECTIONS, Gateway, Declared(&[GATEWAY])),
    (gateway::LEASE_TTL_SECS, Gateway, Declared(&[GATEWAY])),
    (gateway::HEARTBEAT_INTERVAL_MS, Gateway, Declared(&[GATEWAY])),
    (gateway::HEARTBEAT_TIMEOUT_MS, Gateway, Declared(&[GATEWAY])),
    (gateway::MAX_MESSAGES_PER_SEC, Gateway, Declared(&[GATEWAY])),
    (gateway::SHUTDOWN_GRACE_MS, Gateway, Declared(&[GATEWAY])),
    (gateway::ADMIN_TOKEN, Gateway, Declared(&[GATEWAY])),
];

/// Variables read by a library rather than through a `vars` constant.
const LIBRARY_VARIABLES: &[(&str, Reader, Cloud)] = &[
    // tracing-subscriber's `EnvFilter::try_from_default_env` (edge-gateway/src/main.rs).
    ("RUST_LOG", Gateway, Declared(&[GATEWAY])),
];

/// Variables whose value is a secret (REDIS_URL carries the auth token):
/// in the template only ever a Secrets Manager reference.
const SECRETS: &[&str] = &[
    log::REDIS_URL,
    gateway::JWT_SECRET,
    func::WEBHOOK_SECRET,
    func::INGEST_SECRET,
    func::APCA_API_KEY_ID,
    func::APCA_API_SECRET_KEY,
    gateway::ADMIN_TOKEN,
];

/// Secrets read with `common::config::secret`, which also reads
/// `<NAME>_FILE`, without a constant for that second name.
const IMPLICIT_FILE_SECRETS: &[&str] = &[gateway::ADMIN_TOKEN];

fn all_variables() -> impl Iterator<Item = &'static (&'static str, Reader, Cloud)> {
    VARIABLES.iter().chain(LIBRARY_VARIABLES)
}

/// Binary → the variables the template must declare for it.
fn expected_declarations() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut expected: BTreeMap<_, BTreeSet<_>> = EVERY_BINARY.iter().map(|b| (*b, BTreeSet::new())).collect();
    for (name, _, cloud) in all_variables() {
        if let Declared(binaries) = cloud {
            for binary in *binaries {
                expected.get_mut(binary).expect("a deployed binary").insert(*name);
            }
        }
    }
    expected
}

/// Binary → the template's environment for it.
fn template_environments(template: &Template) -> BTreeMap<String, BTreeMap<String, Setting>> {
    let mut all = template.function_environments();
    all.extend(template.container_environments());
    all
}

#[test]
fn every_variable_of_the_code_is_classified() {
    let root = workspace::root();
    let mut in_code = BTreeMap::new();
    for krate in CRATES {
        in_code.extend(vars::scan(&root, krate));
    }
    assert!(
        in_code.contains_key(log::REDIS_URL) && in_code.contains_key(gateway::GATEWAY_ADDR),
        "scan found {in_code:?}"
    );

    let classified: BTreeSet<&str> = VARIABLES.iter().map(|(name, _, _)| *name).collect();
    let unclassified: Vec<String> = in_code
        .values()
        .filter(|var| !classified.contains(var.value.as_str()))
        .map(|var| format!("{} ({}, {})", var.value, var.constant, var.file))
        .collect();
    assert!(
        unclassified.is_empty(),
        "new environment variables: declare them in infra/template.yaml for the binaries that read them (or say \
         why the cloud must not set them), then classify them in VARIABLES of this test: {unclassified:#?}"
    );
    let stale: Vec<&&str> = classified.iter().filter(|name| !in_code.contains_key(**name)).collect();
    assert!(stale.is_empty(), "classified here but no longer in any vars module: {stale:?}");
}

#[test]
fn the_template_declares_exactly_what_each_binary_reads() {
    let actual = template_environments(&Template::load());
    let expected = expected_declarations();
    let binaries: BTreeSet<&str> = actual.keys().map(String::as_str).collect();
    assert_eq!(binaries, expected.keys().copied().collect(), "deployed binaries in {}", template::PATH);

    let mut problems = Vec::new();
    for (binary, wanted) in &expected {
        let declared: BTreeSet<&str> = actual[*binary].keys().map(String::as_str).collect();
        for missing in wanted.difference(&declared) {
            problems.push(format!("{binary}: {missing} is read but not declared"));
        }
        for extra in declared.difference(wanted) {
            let why = all_variables().find(|(name, _, _)| name == extra).map_or_else(
                || "no binary reads it".to_owned(),
                |(_, _, cloud)| match cloud {
                    Absent(reason) => format!("it must not be set in the cloud: {reason}"),
                    Declared(_) => "it is classified for other binaries only".to_owned(),
                },
            );
            problems.push(format!("{binary}: {extra} is declared but {why}"));
        }
    }
    assert!(problems.is_empty(), "{} and the code disagree:\n{}", template::PATH, problems.join("\n"));
}

#[test]
fn secrets_are_only_ever_references_to_secrets_manager() {
    let mut problems = Vec::new();
    for (binary, env) in template_environments(&Template::load()) {
        for (name, setting) in env {
            let secret = SECRETS.contains(&name.as_str());
            if secret && !setting.is_secret_reference() {
                problems.push(format!("{binary}: {name} must come from Secrets Manager, not {setting:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The template's values pass the binaries' own parsers: the gateway's
/// `GatewayConfig` and each function's `Config` as Lambda runs it.
/// Parameters take their defaults; secrets take stand-in values.
#[test]
fn the_template_values_pass_the_binaries_config_checks() {
    let template = Template::load();
    for (binary, env) in template_environments(&template) {
        let values: BTreeMap<String, String> =
            env.iter().map(|(name, setting)| (name.clone(), resolve(&template, name, setting))).collect();
        if binary == GATEWAY {
            if let Err(error) = edge_gateway::GatewayConfig::from_source(&values) {
                panic!("{GATEWAY}'s environment in {} is refused: {error}", template::PATH);
            }
            continue;
        }
        if binary == RELAY {
            if let Err(error) = broker_relay::Config::from_source(&values) {
                panic!("{RELAY}'s environment in {} is refused: {error}", template::PATH);
            }
            continue;
        }
        let function = Function::ALL.into_iter().find(|f| f.name() == binary).expect("a function binary");
        let mut lambda = values.clone();
        lambda.insert(func::AWS_LAMBDA_RUNTIME_API.to_owned(), "127.0.0.1:9001".to_owned());
        if let Err(error) = functions::config::Config::from_source(&lambda, &[function]) {
            panic!("{binary}'s environment in {} is refused: {error}", template::PATH);
        }
    }
}

#[test]
fn functions_triggers_and_builds_match_the_code() {
    let template = Template::load();
    let functions = template.resources("AWS::Serverless::Function");
    let globals = &template.section("Globals")["Function"];
    let by_binary: BTreeMap<&str, &Value> = functions
        .values()
        .map(|f| (f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_default(), *f))
        .collect();
    let names: BTreeSet<&str> = Function::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(
        by_binary.keys().copied().collect::<BTreeSet<_>>(),
        names,
        "one Lambda function per functions::Function"
    );

    for function in Function::ALL {
        let resource = by_binary[function.name()];
        let binary_source = format!("functions/src/bin/{}.rs", function.name());
        assert!(workspace::path(&binary_source).exists(), "{binary_source} is missing");
        assert_eq!(resource["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{}", function.name());
        let property = |key: &str| resource["Properties"][key].as_str().or(globals[key].as_str()).map(str::to_owned);
        assert_eq!(property("Runtime").as_deref(), Some("provided.al2023"), "{}", function.name());
        assert_eq!(property("Handler").as_deref(), Some("bootstrap"), "{}", function.name());

        let events: Vec<&Value> =
            resource["Properties"]["Events"].as_mapping().into_iter().flatten().map(|(_, e)| e).collect();
        assert_eq!(events.len(), 1, "{}: one trigger", function.name());
        let event = events[0];
        match function {
            Function::BrokerWebhook | Function::PriceTicks | Function::AccountLinks | Function::PositionSync => {
                assert_eq!(event["Type"].as_str(), Some("HttpApi"), "{}", function.name());
                assert_eq!(event["Properties"]["Path"].as_str(), Some(function.path()), "{}", function.name());
                assert_eq!(event["Properties"]["Method"].as_str(), Some("POST"), "{}", function.name());
            }
            Function::QueueCompletions => {
                assert_eq!(event["Type"].as_str(), Some("SQS"));
                let response_types = &event["Properties"]["FunctionResponseTypes"];
                assert!(
                    response_types.as_sequence().is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
                    "partial batch failures must be on (functions::lambda::handle_sqs reports them)"
                );
                let queue_id = match &event["Properties"]["Queue"] {
                    Value::Tagged(tagged) => tagged.value.as_str().and_then(|s| s.split('.').next()).map(str::to_owned),
                    _ => None,
                }
                .expect("the SQS event names its queue with !GetAtt <Queue>.Arn");
                let queue = &template.section("Resources")[queue_id.as_str()]["Properties"];
                assert!(
                    queue["RedrivePolicy"]["deadLetterTargetArn"] != Value::Null,
                    "{queue_id} has no dead-letter queue"
                );
                assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().is_some(), "{queue_id}: maxReceiveCount");
                let timeout =
                    resource["Properties"]["Timeout"].as_u64().or(globals["Timeout"].as_u64()).expect("Timeout");
                let visibility = queue["VisibilityTimeout"].as_u64().expect("VisibilityTimeout");
                assert!(
                    visibility >= 6 * timeout,
                    "{queue_id}: VisibilityTimeout {visibility} < 6 x function timeout {timeout}"
                );
            }
        }
    }
}

#[test]
fn the_gateway_fits_its_load_balancer() {
    let template = Template::load();
    let env = &template.container_environments()[GATEWAY];
    let literal = |name: &str| match &env[name] {
        Setting::Literal(value) => value.clone(),
        other => panic!("{GATEWAY}: {name} should be a literal here, is {other:?}"),
    };
    let millis = |name: &str| literal(name).parse::<u64>().unwrap_or_else(|e| panic!("{name}: {e}"));
    let heartbeat_secs = millis(gateway::HEARTBEAT_INTERVAL_MS).div_ceil(1000);
    let grace_secs = millis(gateway::SHUTDOWN_GRACE_MS).div_ceil(1000);
    let listen_port: u64 =
        literal(gateway::GATEWAY_ADDR).rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");

    let balancers = template.resources("AWS::ElasticLoadBalancingV2::LoadBalancer");
    let [balancer] = balancers.values().collect::<Vec<_>>()[..] else { panic!("one load balancer") };
    let balancer_attributes = template::attributes(&balancer["Properties"]["LoadBalancerAttributes"]);
    let idle: u64 = balancer_attributes["idle_timeout.timeout_seconds"].parse().expect("idle timeout");
    assert!(idle > heartbeat_secs, "ALB idle timeout {idle} s must exceed the {heartbeat_secs} s heartbeat");

    let groups = template.resources("AWS::ElasticLoadBalancingV2::TargetGroup");
    let [group] = groups.values().collect::<Vec<_>>()[..] else { panic!("one target group") };
    let group = &group["Properties"];
    assert_eq!(group["HealthCheckPath"].as_str(), Some("/api/health"));
    assert_eq!(group["Port"].as_u64(), Some(listen_port), "target group port vs {}", gateway::GATEWAY_ADDR);
    let group_attributes = template::attributes(&group["TargetGroupAttributes"]);
    let delay: u64 = group_attributes["deregistration_delay.timeout_seconds"].parse().expect("deregistration delay");
    assert!(delay >= grace_secs, "deregistration delay {delay} s < shutdown grace {grace_secs} s");
    assert_ne!(group_attributes.get("stickiness.enabled").map(String::as_str), Some("true"), "no sticky sessions");

    let container = template.container(GATEWAY).expect("the gateway container");
    let stop_timeout = container["StopTimeout"].as_u64().expect("StopTimeout");
    assert!(stop_timeout > grace_secs, "StopTimeout {stop_timeout} s must exceed the shutdown grace {grace_secs} s");
    let ports: Vec<u64> = container["PortMappings"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|m| m["ContainerPort"].as_u64())
        .collect();
    assert_eq!(ports, [listen_port], "container port vs {}", gateway::GATEWAY_ADDR);

    // The rollout settings are parameters, so samconfig.toml steers them.
    for name in [gateway::ENABLE_REALTIME_PORTFOLIO, gateway::ROLLOUT_PERCENT, gateway::ROLLOUT_USERS] {
        assert!(
            matches!(&env[name], Setting::Intrinsic(tag, _) if tag == "Ref"),
            "{name} must come from a template parameter (!Ref)"
        );
    }
}

#[test]
fn compose_sets_only_what_its_binaries_read() {
    let compose = compose::Compose::load();
    for (service, reader) in [("gateway", Gateway), ("functions", Functions), ("relay", Relay)] {
        let readable: BTreeSet<&str> =
            all_variables().filter(|(_, read_by, _)| read_by.includes(reader)).map(|(name, _, _)| *name).collect();
        for name in compose.service(service).environment.keys() {
            let base =
                name.strip_suffix(common::config::FILE_SUFFIX).filter(|base| IMPLICIT_FILE_SECRETS.contains(base));
            let reads = readable.contains(name.as_str()) || base.is_some_and(|base| readable.contains(base));
            assert!(reads, "{}: service {service} sets {name}, which it never reads", compose::PATH);
        }
    }
    let redis = compose.service("redis");
    let aof = redis.command.windows(2).any(|pair| pair[0] == "--appendonly" && pair[1] == "yes");
    assert!(aof, "{}: redis must run with --appendonly yes", compose::PATH);
}

#[test]
fn samconfig_sets_template_parameters_with_allowed_values() {
    let template = Template::load();
    let parameters = template.parameters();
    let environments = samconfig::parameter_overrides();
    let names: BTreeSet<&str> = environments.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["default", "production", "staging"]), "{}", samconfig::PATH);

    for (env, overrides) in &environments {
        assert_eq!(
            samconfig::setting(env, "build", "template_file").as_deref(),
            Some(template::PATH),
            "{env}: build.parameters.template_file"
        );
        for (key, value) in overrides {
            let definition =
                parameters.get(key).unwrap_or_else(|| panic!("{env}: {key} is not a parameter of {}", template::PATH));
            if let Some(allowed) = definition["AllowedValues"].as_sequence() {
                assert!(allowed.iter().any(|a| a.as_str() == Some(value)), "{env}: {key}={value} is not allowed");
            }
            if let Ok(number) = value.parse::<f64>() {
                let bound = |k: &str| definition[k].as_f64().or_else(|| definition[k].as_str()?.parse().ok());
                assert!(bound("MinValue").is_none_or(|min| number >= min), "{env}: {key}={value} below MinValue");
                assert!(bound("MaxValue").is_none_or(|max| number <= max), "{env}: {key}={value} above MaxValue");
            }
        }
        for (name, definition) in &parameters {
            if definition.get("Default").is_none() {
                assert!(overrides.contains_key(name), "{env}: parameter {name} has no default and is not set");
            }
        }
        let stage = if env == "default" { "dev" } else { env.as_str() };
        assert_eq!(overrides.get("Stage").map(String::as_str), Some(stage), "{env}: Stage");
    }
    // The note's week 1: staging with the flag off, for the QA team only.
    let staging = &environments["staging"];
    assert_eq!(staging.get("EnableRealtimePortfolio").map(String::as_str), Some("false"));
    assert!(staging.get("RolloutUsers").is_some_and(|users| !users.is_empty()), "staging: RolloutUsers = the QA team");
}

/// A template value as the binary would see it: parameters take their
/// defaults (or a sample), mappings are looked up, secrets get stand-ins.
fn resolve(template: &Template, name: &str, setting: &Setting) -> String {
    if setting.is_secret_reference() {
        return match name {
            n if n == log::REDIS_URL => "rediss-cluster://:token@clustercfg.example.invalid:6379".to_owned(),
            _ => "stand-in-secret-of-at-least-32-bytes-0123456789".to_owned(),
        };
    }
    match setting {
        Setting::Literal(value) => value.clone(),
        Setting::Intrinsic(tag, value) if tag == "Ref" => {
            let parameter = value.as_str().expect("!Ref <name>");
            let definition = &template.section("Parameters")[parameter];
            match &definition["Default"] {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => panic!("{name}: parameter {parameter} has no default to check with"),
            }
        }
        Setting::Intrinsic(tag, Value::Sequence(path)) if tag == "FindInMap" => {
            let keys: Vec<&str> = path.iter().filter_map(Value::as_str).collect();
            let [map, top, second] = keys[..] else { panic!("{name}: !FindInMap with computed keys") };
            template.section("Mappings")[map][top][second].as_str().map(str::to_owned).unwrap_or_else(|| {
                panic!("{name}: no mapping value {map}.{top}.{second}");
            })
        }
        Setting::Intrinsic(tag, Value::String(text)) if tag == "Sub" => {
            // `${IngestApi}`, `${AWS::Region}`, …: any stand-in keeps the shape.
            let mut resolved = String::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                let end = rest[start..].find('}').map_or(rest.len(), |e| start + e + 1);
                resolved.push_str(&rest[..start]);
                resolved.push_str("example");
                rest = &rest[end..];
            }
            resolved.push_str(rest);
            resolved
        }
        other => panic!("{name}: cannot resolve {other:?} for the check"),
    }
}
