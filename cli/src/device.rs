//! `login --device`: drives the core's RFC 8628 machine ([`authpi_idp::flow::device`]) with the real
//! clock, showing the user code and waiting between polls as the provider asks.

use crate::commands::Ctx;
use crate::error::CliError;
use crate::net::{Net, now};
use crate::output::clean_line;
use authpi_idp::Agent;
use authpi_idp::flow::device::{self, DeviceAuthorization, DevicePoll, DeviceStep};
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

/// Runs the device login; gives up after `timeout` seconds (or when the code expires).
pub fn login(ctx: Ctx, net: &mut Net, scopes: &[String], timeout: u64) -> Result<Agent, CliError> {
    let out = device::request(&net.client, scopes)?;
    let response = net.http.send("device_authorization", out.request)?;
    let auth = DeviceAuthorization::from_response(&net.client, &response, now())?;
    announce(ctx, &auth)?;
    let deadline = crate::net::deadline_in(timeout);
    let mut poll = DevicePoll::new(&net.client, &auth, &net.keys, now());
    let mut transport_error: Option<CliError> = None;
    loop {
        let step = match poll.poll(now()) {
            Ok(step) => step,
            Err(authpi_idp::Error::NoResponse { .. }) if transport_error.is_some() => {
                return Err(transport_error
                    .take()
                    .unwrap_or_else(|| CliError::Io("no response from the provider".into())));
            }
            Err(e) => return Err(e.into()),
        };
        match step {
            DeviceStep::Wait { until } => {
                if Instant::now() >= deadline {
                    return Err(CliError::Io(
                        "the device login was not approved before the timeout (--timeout)".into(),
                    ));
                }
                let pause = pause(until.as_secs(), now().as_secs(), deadline, Instant::now());
                ctx.log.debug(&format!(
                    "authorization pending; next poll in {} s",
                    pause.as_secs()
                ));
                std::thread::sleep(pause);
            }
            DeviceStep::Send(out) => {
                let kind = format!("{:?}", out.kind).to_lowercase();
                match net.http.send(&kind, out.request) {
                    Ok(response) => poll.handle_response(response),
                    Err(e) => {
                        // The core decides what a missing response means; its `NoResponse`
                        // is then replaced by this, more precise, error.
                        transport_error = Some(e);
                        poll.handle_transport_error();
                    }
                }
            }
            DeviceStep::KeysRefreshed(keys) => {
                net.keys = keys;
                net.keys_changed = true;
            }
            DeviceStep::Done(agent) => return Ok(agent),
        }
    }
}

/// How long to sleep before the poll the core asked for at `until` (Unix seconds): at least
/// a second, never past the `--timeout` deadline (a provider's interval cannot outlast it).
fn pause(until: u64, now_unix: u64, deadline: Instant, now: Instant) -> Duration {
    let wanted = Duration::from_secs(until.saturating_sub(now_unix).max(1));
    wanted.min(deadline.saturating_duration_since(now))
}

/// Tells the user where to go and what to enter: prose on stderr, or one JSON line on stdout
/// under `--json` (stdout then carries JSON lines, the last one the result).
fn announce(ctx: Ctx, auth: &DeviceAuthorization) -> Result<(), CliError> {
    if ctx.style.json {
        let line = json!({
            "user_code": auth.user_code(),
            "verification_uri": auth.verification_uri().as_str(),
            "verification_uri_complete": auth.verification_uri_complete().map(|u| u.as_str()),
            "expires_at": auth.expires_at().as_secs(),
            "interval": auth.interval(),
        });
        let mut out = std::io::stdout().lock();
        return writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| CliError::Io(format!("cannot write to stdout: {e}")));
    }
    let mut text = format!(
        "To log in, open {} on any device and enter the code:\n\n  {}\n",
        auth.verification_uri(),
        clean_line(auth.user_code())
    );
    if let Some(u) = auth.verification_uri_complete() {
        text.push_str(&format!("\n(or open {u})\n"));
    }
    text.push_str("\nWaiting for approval …");
    ctx.log.note(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pause;
    use std::time::{Duration, Instant};

    #[test]
    fn the_pause_is_bounded_by_the_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(30);
        // (until, now_unix, expected pause)
        let table = [
            (1_005, 1_000, Duration::from_secs(5)),
            (1_000, 1_000, Duration::from_secs(1)),
            (900, 1_000, Duration::from_secs(1)),
            (1_030, 1_000, Duration::from_secs(30)),
            (1_031, 1_000, Duration::from_secs(30)),
            (u64::MAX, 1_000, Duration::from_secs(30)),
        ];
        for (until, now_unix, expected) in table {
            assert_eq!(
                pause(until, now_unix, deadline, now),
                expected,
                "until {until}"
            );
        }
        // Past the deadline: no sleep at all (the loop then reports the timeout).
        assert_eq!(pause(u64::MAX, 0, now, deadline), Duration::ZERO);
    }
}
