//! `weir catalog`: register a lake in the Glue Data Catalog, or print Athena DDL with
//! partition projection.

use crate::catalog::Catalog;
use crate::catalog::athena::projection_ddl;
use crate::catalog::definition::TableSpec;
use crate::lake::format::Format;
use crate::lake::table::{Descriptor, Table};
use crate::storage::Store;
use anyhow::Context;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct CatalogArgs {
    #[command(subcommand)]
    command: CatalogCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CatalogCommand {
    /// Register every table of the lake and every partition that holds an object.
    Sync {
        /// The lake root: a directory or s3://bucket/prefix.
        #[arg(long)]
        lake: String,
        /// The catalog: glue://DATABASE.
        #[arg(long)]
        catalog: String,
    },
    /// Print Athena's CREATE EXTERNAL TABLE for a table, with partition projection.
    Ddl {
        /// The lake root: a directory or s3://bucket/prefix.
        #[arg(long)]
        lake: String,
        /// The table (its folder under the lake).
        #[arg(long)]
        table: String,
        /// The Athena database to create it in.
        #[arg(long, default_value = "weir_lake")]
        database: String,
    },
}

pub(super) async fn catalog_command(args: CatalogArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CatalogCommand::Sync { lake, catalog } => {
            let store = Store::open(&lake)
                .await
                .with_context(|| format!("cannot open the lake {lake}"))?;
            let registrar = Catalog::open(&catalog, &lake).await?;
            let report = crate::catalog::sync::sync(&registrar, &store)
                .await
                .with_context(|| format!("cannot register {lake} in {catalog}"))?;
            println!(
                "{catalog}: {} tables, {} partitions registered",
                report.tables, report.partitions
            );
            for skipped in &report.skipped {
                eprintln!("weir: skipped {skipped}");
            }
            Ok(if report.skipped.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        CatalogCommand::Ddl {
            lake,
            table,
            database,
        } => {
            let store = Store::open(&lake)
                .await
                .with_context(|| format!("cannot open the lake {lake}"))?;
            let key = format!("{}/{table}.json", crate::lake::table::DESCRIPTORS);
            let bytes = store
                .get_if_exists(&key)
                .await?
                .with_context(|| format!("{lake} has no table {table:?} (no {key})"))?;
            let descriptor = Descriptor::parse(&bytes)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{key} is not a table descriptor"))?;
            let format = Format::parse(&descriptor.object_format)
                .with_context(|| format!("{key}: unknown format {}", descriptor.object_format))?;
            let table = Table::new(&descriptor.table, descriptor.columns)?;
            let spec = TableSpec::new(&lake, table, format);
            let first_day = descriptor.created_at.get(..10).unwrap_or("2020-01-01");
            print!("{}", projection_ddl(&spec, &database, first_day));
            Ok(ExitCode::SUCCESS)
        }
    }
}
