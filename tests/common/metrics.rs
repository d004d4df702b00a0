//! A `--metrics-file` as the Prometheus client's own parser reads it
//! (`tests/py/check_metrics.py`), for the metrics tests and the conformance suite.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::{SECRET, checked, python};

/// A metrics file as the Prometheus parser read it.
pub struct Metrics {
    pub types: BTreeMap<String, String>,
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    /// The value of the sample `name` with exactly `labels`, if there is one.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == labels)
            .map(|(_, _, v)| *v)
    }

    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).unwrap_or_else(|| {
            panic!(
                "no {name}{labels:?} among {:#?}",
                self.samples
                    .iter()
                    .map(|(n, l, _)| format!("{n}{l:?}"))
                    .collect::<Vec<_>>()
            )
        })
    }

    /// Every sample of `name`, by the value of `label`.
    pub fn by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, v)| (l[label].clone(), *v))
            .collect()
    }
}

/// Parses `path` with the checker (which also fails on the API key in the file).
pub fn parse(path: &Path) -> Metrics {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_metrics.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(path).arg(SECRET);
    let json: serde_json::Value = serde_json::from_slice(&checked(cmd, "check_metrics")).unwrap();
    let types = json["types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let samples = json["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (
                s[0].as_str().unwrap().to_owned(),
                labels,
                s[2].as_f64().unwrap(),
            )
        })
        .collect();
    Metrics { types, samples }
}
