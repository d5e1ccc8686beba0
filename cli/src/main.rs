//! `authpi-idp`: the AuthPI / OpenID Connect client on the command line.
//!
//! Configuration comes from `--issuer`, `--client-id`, `--client-secret`, `--redirect-uri` or
//! `AUTHPI_ISSUER_URL`, `AUTHPI_CLIENT_ID`, `AUTHPI_CLIENT_SECRET`, `AUTHPI_REDIRECT_URI`. The
//! provider is found with OpenID Connect Discovery; ID tokens are always verified. With
//! `--json` the result is one JSON object on stdout and a failure one JSON object
//! `{"error","kind","message"}` on stderr. Exit codes: 0 ok, 1 denied (`can`), 2 any error.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod args;
mod commands;
mod demo;
mod error;
mod issuer;
mod output;
mod store;

use args::{Cli, Command};
use clap::Parser;
use clap::error::ErrorKind;
use error::CliError;
use output::Style;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || !std::env::args().any(|a| a == "--json")
            {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
            let err = CliError::Usage(e.kind().to_string());
            eprintln!("{}", err.to_json());
            return ExitCode::from(2);
        }
    };
    let style = Style {
        json: cli.json,
        show_tokens: cli.show_tokens,
    };
    match run(cli.command, style) {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            let written = if style.json {
                writeln!(out, "{}", outcome.json)
            } else {
                write!(out, "{}", outcome.text)
            };
            if written.and_then(|()| out.flush()).is_err() {
                return ExitCode::from(2);
            }
            ExitCode::from(outcome.code)
        }
        Err(err) => {
            if style.json {
                eprintln!("{}", err.to_json());
            } else {
                eprintln!("error: {err} ({})", err.code());
            }
            ExitCode::from(2)
        }
    }
}

fn run(command: Command, style: Style) -> Result<commands::Outcome, CliError> {
    match command {
        Command::Demo => demo::run(style),
        Command::Login(args) => commands::login(&args, style),
        Command::Whoami { conn, tokens } => commands::whoami(&conn, &tokens.tokens, false, style),
        Command::Refresh { conn, tokens } => commands::whoami(&conn, &tokens.tokens, true, style),
        Command::Can {
            conn,
            tokens,
            org,
            action,
            resource,
        } => commands::can(&conn, &tokens.tokens, org.as_deref(), &action, &resource),
        Command::Userinfo { conn, tokens } => commands::userinfo(&conn, &tokens.tokens),
        Command::Revoke {
            conn,
            tokens,
            refresh,
            access,
        } => commands::revoke(&conn, &tokens.tokens, refresh, access),
        Command::LogoutUrl {
            conn,
            tokens,
            post_logout_redirect_uri,
            state,
        } => commands::logout_url(
            &conn,
            tokens.as_deref(),
            post_logout_redirect_uri.as_deref(),
            state.as_deref(),
        ),
        Command::ClientCredentials {
            conn,
            scope,
            tokens,
        } => commands::client_credentials(&conn, &scope, tokens.as_deref(), style),
        Command::Verify {
            conn,
            audience,
            token,
        } => commands::verify(&conn, &audience, &token, style),
        Command::Issuer(cmd) => issuer::run(cmd),
    }
}
