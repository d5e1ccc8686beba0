//! OpenID Connect Discovery 1.0, then the JWKS: a [`Client`] for any OpenID provider.

use super::Operation;
use super::Step;
use super::common::{FINISHED, Inbox, record_inputs};
use crate::client::Client;
use crate::config::Config;
use crate::error::Error;
use crate::http::{Outgoing, RequestKind, get};
use crate::provider::{KeySet, ProviderMetadata};
use crate::time::UnixTime;
use std::fmt;

impl Client {
    /// Discovers the provider (OpenID Connect Discovery 1.0) and fetches its keys.
    pub fn discover(config: Config) -> Discover {
        Discover::new(config)
    }
}

/// A client built from discovery, with the provider's key set fetched.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Discovered {
    /// The client, with the discovered endpoints.
    pub client: Client,
    /// The provider's key set, fetched right after discovery.
    pub keys: KeySet,
}

enum DiscoverState {
    Start,
    AwaitMetadata,
    AwaitJwks(Client),
    Finished,
}

/// OpenID Connect Discovery followed by the JWKS fetch: `Send(discovery)`, `Send(JWKS)`,
/// `Done(Discovered)`.
pub struct Discover {
    config: Config,
    state: DiscoverState,
    inbox: Inbox,
}

impl fmt::Debug for Discover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discover")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

impl Discover {
    fn new(config: Config) -> Self {
        Discover {
            config,
            state: DiscoverState::Start,
            inbox: Inbox::default(),
        }
    }
}

impl Operation for Discover {
    type Output = Discovered;

    fn poll(&mut self, now: UnixTime) -> Result<Step<Discovered>, Error> {
        match std::mem::replace(&mut self.state, DiscoverState::Finished) {
            DiscoverState::Start => {
                let url = ProviderMetadata::discovery_url(&self.config.issuer)?;
                let request = get(&url, None)?;
                self.state = DiscoverState::AwaitMetadata;
                Ok(self.inbox.send(Outgoing {
                    kind: RequestKind::Discovery,
                    request,
                }))
            }
            DiscoverState::AwaitMetadata => {
                let resp = self.inbox.take()?;
                let metadata = ProviderMetadata::from_response(&resp, &self.config.issuer, now)?;
                let client = Client::with_metadata(self.config.clone(), metadata)?;
                let request = get(client.metadata().jwks_uri(), None)?;
                self.state = DiscoverState::AwaitJwks(client);
                Ok(self.inbox.send(Outgoing {
                    kind: RequestKind::Jwks,
                    request,
                }))
            }
            DiscoverState::AwaitJwks(client) => {
                let keys = KeySet::from_response(&self.inbox.take()?, now)?.bind(
                    client.metadata().issuer(),
                    client.metadata().jwks_uri().as_str(),
                );
                Ok(Step::Done(Discovered { client, keys }))
            }
            DiscoverState::Finished => Err(FINISHED),
        }
    }

    record_inputs!(inbox);
}
