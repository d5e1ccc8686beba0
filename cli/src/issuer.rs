//! `authpi-idp issuer serve`: the testkit issuer as a local AuthPI-compatible issuer for
//! development, configured from a file (see `authpi_idp_testkit::dev` for the format and
//! `testkit/dev-issuer.toml` for an example). The serving logic lives in the testkit; this file
//! is only the command line.

use crate::commands::Outcome;
use crate::error::CliError;
use authpi_idp_testkit::ServeOptions;
use authpi_idp_testkit::dev::{self, DevConfig, DevOptions};
use clap::{Args, Subcommand};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// `authpi-idp issuer …`.
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Serve the development issuer until interrupted. The first line on stdout is
    /// `issuer: <URL>`; with `--log-requests`, one line per request follows
    /// (`METHOD PATH STATUS`).
    Serve(ServeArgs),
}

/// `issuer serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TCP port (0: any free port; the URL line says which).
    #[arg(long)]
    pub port: u16,
    /// Configuration file: TOML, or JSON when the name ends in `.json`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Print one line per request: method, path, status (and each back-channel logout
    /// delivery).
    #[arg(long)]
    pub log_requests: bool,
    /// Show a login page to choose the user instead of approving the configured one.
    #[arg(long)]
    pub interactive: bool,
}

/// Runs an `issuer` command. `serve` returns only on a startup error.
pub fn run(cmd: IssuerCommand) -> Result<Outcome, CliError> {
    let IssuerCommand::Serve(args) = cmd;
    let config = DevConfig::from_path(&args.config).map_err(|e| CliError::Config(e.to_string()))?;
    let serve = ServeOptions::default()
        .bind(SocketAddr::new(args.bind, args.port))
        .log_requests(args.log_requests);
    let served = dev::serve(
        &config,
        DevOptions::new(serve).interactive(args.interactive),
    )
    .map_err(|e| CliError::Io(format!("cannot start the issuer: {e}")))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "issuer: {}", served.issuer_url())
            .and_then(|()| out.flush())
            .map_err(|e| CliError::Io(e.to_string()))?;
    }
    // Serve until the process is interrupted.
    loop {
        std::thread::park();
    }
}
