//! `infra/compose.yaml` as data: each service's environment (with
//! `${NAME:-default}` interpolated from its default, as compose does when
//! `NAME` is unset), published ports, secrets and command.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_norway::Value;

use crate::workspace;

/// Where the compose file lives, from the repository root.
pub const PATH: &str = "infra/compose.yaml";

/// Where compose mounts a service's secrets.
pub const SECRETS_DIR: &str = "/run/secrets/";

/// One service of the compose file.
#[derive(Debug, Clone, Default)]
pub struct Service {
    /// `environment`, interpolated.
    pub environment: BTreeMap<String, String>,
    /// `ports`, as written (`127.0.0.1:8080:8080`).
    pub ports: Vec<String>,
    /// `secrets` the service mounts.
    pub secrets: Vec<String>,
    /// `command`, when given as a list.
    pub command: Vec<String>,
    /// `depends_on` service names.
    pub depends_on: Vec<String>,
}

impl Service {
    /// The container port published for `container_port`, checked to be
    /// bound to loopback on the host.
    pub fn publishes(&self, container_port: u16) -> bool {
        self.ports.iter().any(|port| {
            let parts: Vec<_> = port.trim_end_matches("/tcp").split(':').collect();
            matches!(parts.as_slice(), ["127.0.0.1", _, container] if container.parse() == Ok(container_port))
        })
    }
}

/// The parsed compose file.
#[derive(Debug, Clone)]
pub struct Compose {
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Top-level `secrets`: name → file, resolved against `infra/`.
    pub secret_files: BTreeMap<String, PathBuf>,
}

impl Compose {
    /// Reads `infra/compose.yaml`.
    ///
    /// # Panics
    /// When it is missing, not YAML, or not shaped as expected.
    pub fn load() -> Self {
        let root: Value = serde_norway::from_str(&workspace::read(PATH)).unwrap_or_else(|e| panic!("{PATH}: {e}"));
        let base = workspace::path(PATH).parent().expect("infra/").to_owned();
        let services = root["services"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{PATH}: no services"))
            .iter()
            .filter_map(|(name, service)| Some((name.as_str()?.to_owned(), parse_service(service))))
            .collect();
        let secret_files = root["secrets"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(name, secret)| {
                let file = interpolate(secret["file"].as_str()?);
                Some((name.as_str()?.to_owned(), base.join(file)))
            })
            .collect();
        Self { services, secret_files }
    }

    /// The service `name`.
    ///
    /// # Panics
    /// When there is none.
    pub fn service(&self, name: &str) -> &Service {
        self.services.get(name).unwrap_or_else(|| panic!("{PATH}: no service {name}"))
    }
}

fn parse_service(service: &Value) -> Service {
    let environment = match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .filter_map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => serde_norway::to_string(other).ok()?.trim().to_owned(),
                };
                Some((k.as_str()?.to_owned(), interpolate(&value)))
            })
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .filter_map(|item| {
                let (k, v) = item.as_str()?.split_once('=')?;
                Some((k.to_owned(), interpolate(v)))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let strings = |value: &Value| -> Vec<String> {
        value.as_sequence().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    };
    let depends_on = match &service["depends_on"] {
        Value::Mapping(map) => map.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect(),
        other => strings(other),
    };
    Service {
        environment,
        ports: strings(&service["ports"]),
        secrets: strings(&service["secrets"]),
        command: strings(&service["command"]),
        depends_on,
    }
}

/// `${NAME:-default}` and `${NAME-default}` become their default, `${NAME}`
/// becomes empty: the values compose uses when `NAME` is not exported,
/// which is how the tests run it.
pub fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &rest[start + 2..start + len];
        let default = inner.split_once(":-").or_else(|| inner.split_once('-')).map_or("", |(_, d)| d);
        out.push_str(default);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_takes_defaults() {
        assert_eq!(interpolate("${A:-x}/${B-y}/${C}/plain"), "x/y//plain");
        assert_eq!(interpolate("no vars"), "no vars");
    }

    #[test]
    fn published_ports_are_loopback_only() {
        let service = Service { ports: vec!["127.0.0.1:8080:8080".into(), "3000:3000".into()], ..Service::default() };
        assert!(service.publishes(8080));
        assert!(!service.publishes(3000), "published on every interface");
    }
}
