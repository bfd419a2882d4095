//! `infra/template.yaml` (AWS SAM) as data: the environment each deployed
//! binary gets, the triggers, the load balancer settings. CloudFormation's
//! short tags (`!Ref`, `!Sub`, …) arrive as tagged values; the checks only
//! need literal values and the tags' names.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::value::{Tag, TaggedValue};
use serde_norway::Value;

use crate::workspace;

/// Where the template lives, from the repository root.
pub const PATH: &str = "infra/template.yaml";

/// How the template gives a variable its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// A literal string.
    Literal(String),
    /// A CloudFormation function (`!Ref`, `!Sub`, `!FindInMap`, …): the tag
    /// and what follows it.
    Intrinsic(String, Value),
    /// From Secrets Manager or SSM through an ECS task's `Secrets`.
    TaskSecret(Value),
}

impl Setting {
    /// Whether the value is read from Secrets Manager: an ECS secret, or a
    /// `{{resolve:secretsmanager:…}}` dynamic reference.
    pub fn is_secret_reference(&self) -> bool {
        match self {
            Setting::TaskSecret(_) => true,
            Setting::Literal(text) => text.starts_with("{{resolve:secretsmanager:"),
            Setting::Intrinsic(tag, value) => {
                tag == "Sub" && value.as_str().is_some_and(|text| text.starts_with("{{resolve:secretsmanager:"))
            }
        }
    }
}

/// The parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

impl Template {
    /// Reads `infra/template.yaml`.
    ///
    /// # Panics
    /// When it is missing or not YAML.
    pub fn load() -> Self {
        let root = serde_norway::from_str(&workspace::read(PATH)).unwrap_or_else(|e| panic!("{PATH}: {e}"));
        Self { root }
    }

    /// A top-level section (`Resources`, `Parameters`, `Globals`, …).
    pub fn section(&self, name: &str) -> &Value {
        &self.root[name]
    }

    /// The resources of `resource_type`, by logical id.
    pub fn resources(&self, resource_type: &str) -> BTreeMap<String, &Value> {
        mapping_entries(self.section("Resources"))
            .filter(|(_, resource)| resource["Type"].as_str() == Some(resource_type))
            .collect()
    }

    /// The parameters: name → definition.
    pub fn parameters(&self) -> BTreeMap<String, &Value> {
        mapping_entries(self.section("Parameters")).collect()
    }

    /// Each Lambda function's environment (its own merged over `Globals`),
    /// keyed by the binary it runs (`Metadata.BuildProperties.Binary`).
    ///
    /// # Panics
    /// When a function does not name its binary.
    pub fn function_environments(&self) -> BTreeMap<String, BTreeMap<String, Setting>> {
        let globals = environment_variables(&self.section("Globals")["Function"]);
        self.resources("AWS::Serverless::Function")
            .into_iter()
            .map(|(id, function)| {
                let binary = function["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{PATH}: {id} names no Metadata.BuildProperties.Binary"));
                let mut env = globals.clone();
                env.extend(environment_variables(&function["Properties"]));
                (binary.to_owned(), env)
            })
            .collect()
    }

    /// Each ECS container's environment (`Environment` and `Secrets`), by
    /// container name.
    pub fn container_environments(&self) -> BTreeMap<String, BTreeMap<String, Setting>> {
        let mut containers = BTreeMap::new();
        for task in self.resources("AWS::ECS::TaskDefinition").values() {
            for container in task["Properties"]["ContainerDefinitions"].as_sequence().into_iter().flatten() {
                let mut env = BTreeMap::new();
                for entry in container["Environment"].as_sequence().into_iter().flatten() {
                    if let Some(name) = entry["Name"].as_str() {
                        env.insert(name.to_owned(), setting(&entry["Value"]));
                    }
                }
                for entry in container["Secrets"].as_sequence().into_iter().flatten() {
                    if let Some(name) = entry["Name"].as_str() {
                        env.insert(name.to_owned(), Setting::TaskSecret(entry["ValueFrom"].clone()));
                    }
                }
                if let Some(name) = container["Name"].as_str() {
                    containers.insert(name.to_owned(), env);
                }
            }
        }
        containers
    }

    /// The container definition named `name`.
    pub fn container(&self, name: &str) -> Option<&Value> {
        self.resources("AWS::ECS::TaskDefinition").into_values().find_map(|task| {
            task["Properties"]["ContainerDefinitions"]
                .as_sequence()?
                .iter()
                .find(|container| container["Name"].as_str() == Some(name))
        })
    }
}

/// The `Key`/`Value` pairs of a load balancer's or target group's
/// attributes list, literal values only.
pub fn attributes(list: &Value) -> BTreeMap<String, String> {
    list.as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|entry| Some((entry["Key"].as_str()?.to_owned(), entry["Value"].as_str()?.to_owned())))
        .collect()
}

/// The tag of a tagged value (`Ref`, `Sub`, `GetAtt`, …), if it is one.
pub fn tag_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => Some(tag_name(&tagged.tag)),
        _ => None,
    }
}

fn setting(value: &Value) -> Setting {
    match value {
        Value::String(text) => Setting::Literal(text.clone()),
        Value::Number(number) => Setting::Literal(number.to_string()),
        Value::Bool(flag) => Setting::Literal(flag.to_string()),
        Value::Tagged(tagged) => {
            let TaggedValue { tag, value } = tagged.as_ref();
            Setting::Intrinsic(tag_name(tag), value.clone())
        }
        other => Setting::Intrinsic(String::new(), other.clone()),
    }
}

fn tag_name(tag: &Tag) -> String {
    tag.to_string().trim_start_matches('!').to_owned()
}

fn environment_variables(properties: &Value) -> BTreeMap<String, Setting> {
    mapping_entries(&properties["Environment"]["Variables"]).map(|(name, value)| (name, setting(value))).collect()
}

fn mapping_entries(value: &Value) -> impl Iterator<Item = (String, &Value)> {
    value.as_mapping().into_iter().flatten().filter_map(|(key, value)| Some((key.as_str()?.to_owned(), value)))
}

/// Names of a set of settings.
pub fn names(env: &BTreeMap<String, Setting>) -> BTreeSet<String> {
    env.keys().cloned().collect()
}
