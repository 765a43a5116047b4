//! Athena DDL with partition projection, for those who prefer projection to registered
//! partitions: Athena then computes partition locations from the query instead of reading the
//! catalog's partitions. Pure: a table in, a `CREATE EXTERNAL TABLE` statement out.

use crate::catalog::definition::{HiveFormat, TableSpec};

/// `CREATE EXTERNAL TABLE` for `spec` in `database`, with projection: `dt` as a date from
/// `first_day` (`YYYY-MM-DD`) to now, `hr` as `00`-`23`, every other column `injected` (a
/// query must then give it with `=` or `IN`).
pub fn projection_ddl(spec: &TableSpec, database: &str, first_day: &str) -> String {
    let columns: Vec<String> = spec
        .data_columns()
        .iter()
        .map(|(name, kind)| format!("  `{name}` {kind}"))
        .collect();
    let keys: Vec<String> = spec
        .table
        .columns
        .iter()
        .map(|c| format!("`{c}` string"))
        .collect();
    let hive = HiveFormat::of(spec.format);
    let mut properties = vec![("projection.enabled".to_owned(), "true".to_owned())];
    for column in &spec.table.columns {
        let p = |key: &str| format!("projection.{column}.{key}");
        match column.as_str() {
            "dt" => properties.extend([
                (p("type"), "date".to_owned()),
                (p("format"), "yyyy-MM-dd".to_owned()),
                (p("range"), format!("{first_day},NOW")),
                (p("interval"), "1".to_owned()),
                (p("interval.unit"), "DAYS".to_owned()),
            ]),
            "hr" => properties.extend([
                (p("type"), "integer".to_owned()),
                (p("range"), "0,23".to_owned()),
                (p("digits"), "2".to_owned()),
            ]),
            _ => properties.push((p("type"), "injected".to_owned())),
        }
    }
    let template: Vec<String> = spec
        .table
        .columns
        .iter()
        .map(|c| format!("{c}=${{{c}}}"))
        .collect();
    properties.push((
        "storage.location.template".to_owned(),
        format!("{}{}/", spec.location, template.join("/")),
    ));
    let properties: Vec<String> = properties
        .iter()
        .map(|(k, v)| format!("  '{k}' = '{v}'"))
        .collect();
    format!(
        "CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (\n{columns}\n)\n\
         PARTITIONED BY ({keys})\n\
         ROW FORMAT SERDE '{serde}'\n\
         STORED AS INPUTFORMAT '{input}'\n\
         OUTPUTFORMAT '{output}'\n\
         LOCATION '{location}'\n\
         TBLPROPERTIES (\n{properties}\n);\n",
        table = spec.glue_name(),
        columns = columns.join(",\n"),
        keys = keys.join(", "),
        serde = hive.serde,
        input = hive.input,
        output = hive.output,
        location = spec.location,
        properties = properties.join(",\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::format::Format;
    use crate::lake::table::Table;

    #[test]
    fn projects_days_hours_and_injects_the_rest() {
        let table = Table::new("retail", vec!["section".into(), "dt".into(), "hr".into()]).unwrap();
        let spec = TableSpec::new("s3://lake/events", table, Format::Json);
        let ddl = projection_ddl(&spec, "weir_lake", "2026-11-01");
        assert!(ddl.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS `weir_lake`.`retail` ("));
        assert!(ddl.contains("PARTITIONED BY (`section` string, `dt` string, `hr` string)"));
        assert!(ddl.contains("'projection.section.type' = 'injected'"));
        assert!(ddl.contains("'projection.dt.range' = '2026-11-01,NOW'"));
        assert!(ddl.contains("'projection.hr.digits' = '2'"));
        assert!(ddl.contains(
            "'storage.location.template' = 's3://lake/events/retail/section=${section}/dt=${dt}/hr=${hr}/'"
        ));
        assert!(ddl.contains("LOCATION 's3://lake/events/retail/'"));
        assert!(ddl.contains("`payload` string"));
    }
}
