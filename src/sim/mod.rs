//! PLACEHOLDER: the Dust simulator is being written (helper A). Replace this file entirely.
#[derive(Debug, Clone, clap::Args)]
pub struct SimConfig {}
pub async fn run_cli(_c: SimConfig) -> anyhow::Result<()> { Ok(()) }
