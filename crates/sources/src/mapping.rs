//! Mapping files: being written (issue 14).

use crate::{Context, SourceKind};
use expansa_import::Problem;

/// A mapping from a flat table's columns to the book's fields.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub name: String,
}

impl Mapping {
    pub fn parse(name: &str, _text: &str) -> Result<Mapping, Problem> {
        Ok(Mapping {
            name: name.to_string(),
        })
    }
}

/// The preset shipped for a flat source.
pub fn preset(kind: SourceKind) -> Option<&'static str> {
    match kind {
        SourceKind::Baremetrics
        | SourceKind::Chartmogul
        | SourceKind::Asaas
        | SourceKind::Iugu
        | SourceKind::Vindi => Some(""),
        _ => None,
    }
}

pub fn convert(m: &Mapping, ctx: &mut Context) -> Result<(), Problem> {
    Err(ctx
        .input
        .problem(&format!("the {} mapping is not written yet", m.name)))
}
