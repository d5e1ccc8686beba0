//! `authpi-idp`: the AuthPI / OpenID Connect client on the command line.
//!
//! Configuration comes from `--issuer`, `--client-id`, `--client-secret-file`, `--redirect-uri`
//! or `AUTHPI_ISSUER_URL`, `AUTHPI_CLIENT_ID`, `AUTHPI_CLIENT_SECRET`, `AUTHPI_REDIRECT_URI`,
//! and from the stored session (a token file names its issuer and client). The provider is
//! found with OpenID Connect Discovery; ID tokens are always verified. With `--json` the result
//! is one JSON object on stdout and a failure one JSON object
//! `{"error","kind","message","exit_code",…}` on stderr. Exit codes: see [`args::AFTER_HELP`].
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
mod device;
mod error;
mod issuer;
mod keyring;
mod login;
mod net;
mod output;
mod store;

use args::{Cli, Command};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use commands::Ctx;
use error::{CliError, EXIT_ERROR, EXIT_USAGE};
use net::Log;
use output::Style;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let json = std::env::args_os().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, json),
    };
    let roots = if let Some(pem) = &cli.ca_file {
        match authpi_idp_ureq::TlsRoots::from_pem_file(pem) {
            Ok(r) => r,
            Err(e) => {
                let err = CliError::usage(
                    format!("--ca-file {}: {e}", pem.display()),
                    Some("--ca-file"),
                );
                return report(&err, cli.json);
            }
        }
    } else if cli.system_roots {
        authpi_idp_ureq::TlsRoots::Os
    } else {
        authpi_idp_ureq::TlsRoots::default()
    };
    net::set_roots(roots);
    let verbose =
        cli.verbose || std::env::var_os("AUTHPI_LOG").is_some_and(|v| !v.is_empty() && v != "0");
    let ctx = Ctx {
        style: Style {
            json: cli.json,
            show_tokens: cli.show_tokens,
        },
        log: Log {
            verbose,
            json: cli.json,
        },
    };
    match run(cli.command, ctx) {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            let written = if ctx.style.json {
                writeln!(out, "{}", outcome.json)
            } else {
                write!(out, "{}", outcome.text)
            };
            if written.and_then(|()| out.flush()).is_err() {
                return ExitCode::from(EXIT_ERROR);
            }
            ExitCode::from(outcome.code)
        }
        Err(err) => report(&err, ctx.style.json),
    }
}

/// Prints an error (one JSON object under `--json`) and returns its exit code.
fn report(err: &CliError, json: bool) -> ExitCode {
    if json {
        eprintln!("{}", err.to_json());
    } else {
        eprintln!("error: {err} ({})", err.code());
    }
    ExitCode::from(err.exit_code())
}

/// A clap error: help and version print as usual (exit 0); anything else is a usage error
/// (exit 4), as one JSON object naming the argument under `--json`.
fn usage_error(e: &clap::Error, json: bool) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || matches!(
            e.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) && !json
    {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
    }
    if !json {
        let _ = e.print();
        return ExitCode::from(EXIT_USAGE);
    }
    let argument = e.get(ContextKind::InvalidArg).and_then(|v| match v {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(s) => Some(s.join(", ")),
        _ => None,
    });
    // The rendered message without its usage/help tail, on one line.
    let rendered = e.render().to_string();
    let message = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ");
    let message = message
        .strip_prefix("error: ")
        .unwrap_or(&message)
        .to_owned();
    let err = CliError::usage(message, argument.as_deref());
    eprintln!("{}", err.to_json());
    ExitCode::from(EXIT_USAGE)
}

fn run(command: Command, ctx: Ctx) -> Result<commands::Outcome, CliError> {
    match command {
        Command::Demo => demo::run(ctx.style),
        Command::Login(args) => login::login(ctx, &args),
        Command::Whoami { conn, at } => commands::whoami(ctx, &conn, &at, false),
        Command::Token { conn, at, header } => commands::token(ctx, &conn, &at, header),
        Command::Refresh { conn, at } => commands::whoami(ctx, &conn, &at, true),
        Command::Can {
            conn,
            at,
            org,
            action,
            resource,
        } => commands::can(ctx, &conn, &at, org.as_deref(), &action, &resource),
        Command::Userinfo { conn, at } => commands::userinfo(ctx, &conn, &at),
        Command::Revoke {
            conn,
            at,
            refresh,
            access,
        } => commands::revoke(ctx, &conn, &at, refresh, access),
        Command::Logout {
            conn,
            at,
            post_logout_redirect_uri,
        } => commands::logout(ctx, &conn, &at, post_logout_redirect_uri.as_deref()),
        Command::LogoutUrl {
            conn,
            tokens,
            post_logout_redirect_uri,
            state,
        } => commands::logout_url(
            ctx,
            &conn,
            tokens.as_deref(),
            post_logout_redirect_uri.as_deref(),
            state.as_deref(),
        ),
        Command::ClientCredentials {
            conn,
            scope,
            tokens,
        } => commands::client_credentials(ctx, &conn, &scope, tokens.as_deref()),
        Command::Verify {
            conn,
            audience,
            token,
        } => commands::verify(ctx, &conn, &audience, &token),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "authpi-idp", &mut text);
            let text = String::from_utf8_lossy(&text).into_owned();
            Ok(commands::Outcome::ok(
                serde_json::json!({"shell": shell.to_string(), "script": text}),
                text,
            ))
        }
        Command::Issuer(cmd) => issuer::run(cmd),
    }
}
