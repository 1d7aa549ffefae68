//! `helio logs`: the configured logs as a person or a program reads them —
//! a table, or one line of JSON that a CI workflow turns into a matrix of one
//! job per log (`fromJSON()` in GitHub Actions, see README's recipes).
//!
//! Only the validated per-log settings are read, so whatever fills
//! `Config::logs` is listed the same way.

use serde::Serialize;

use super::LogConfig;

/// What `helio logs` shows of one log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogSummary {
    pub name: String,
    pub log_url: String,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub format: &'static str,
}

/// The logs in config order.
pub fn summarize(logs: &[LogConfig]) -> Vec<LogSummary> {
    logs.iter()
        .map(|log| LogSummary {
            name: log.name.clone(),
            log_url: log.log_url.clone(),
            is_final: log.is_final,
            format: log.format.name(),
        })
        .collect()
}

/// One line: a JSON array of objects, `[]` for no logs.
pub fn json(logs: &[LogSummary]) -> String {
    // Serializing strings, booleans and static names cannot fail.
    serde_json::to_string(logs).unwrap_or_else(|_| "[]".to_string())
}

/// Aligned columns under a header, one log a line.
pub fn table(logs: &[LogSummary]) -> String {
    let rows: Vec<[&str; 4]> = logs
        .iter()
        .map(|log| [log.name.as_str(), log.format, if log.is_final { "yes" } else { "no" }, log.log_url.as_str()])
        .collect();
    let header = ["NAME", "FORMAT", "FINAL", "LOG_URL"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(header)
        .chain(rows)
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const CONFIG: &str = "scraper_contact_email: ops@example.org\nlogs:\n\
        - name: sycamore2026h1\n  log_url: https://mon.sycamore.ct.letsencrypt.org/2026h1/\n  format: hybrid\n\
        - name: old\n  log_url: https://old.example.org/\n  final: true\n";

    fn logs() -> Vec<LogSummary> {
        summarize(&Config::parse(Path::new("/etc/helio/helio.yaml"), CONFIG).unwrap().logs)
    }

    #[test]
    fn json_is_one_line_of_objects_in_config_order() {
        assert_eq!(
            json(&logs()),
            r#"[{"name":"sycamore2026h1","log_url":"https://mon.sycamore.ct.letsencrypt.org/2026h1/","final":false,"format":"hybrid"},{"name":"old","log_url":"https://old.example.org/","final":true,"format":"v1"}]"#
        );
        assert_eq!(json(&[]), "[]");
    }

    #[test]
    fn the_table_aligns_its_columns() {
        assert_eq!(
            table(&logs()),
            "NAME            FORMAT  FINAL  LOG_URL\n\
             sycamore2026h1  hybrid  no     https://mon.sycamore.ct.letsencrypt.org/2026h1/\n\
             old             v1      yes    https://old.example.org/"
        );
    }
}
