//! The one-pass typed readers (ID-token payload, access-token payload, token response, stored
//! token set) on raw bytes, against the strict `Value`-tree reader: whenever the tree reader
//! refuses a document (syntax, duplicate member at any depth, depth, size, not an object), every
//! typed reader refuses it with exactly the same JSON error; whenever it accepts one, no typed
//! reader reports a JSON error (only claim or member rules).
#![no_main]

use authpi_idp::error::{Endpoint, ResponseError, TokenError};
use authpi_idp::internal::json::{JsonError, parse_object};
use authpi_idp::internal::readers;
use authpi_idp::{Error, TokenSet};
use authpi_idp_fuzz::*;
use libfuzzer_sys::fuzz_target;

/// The JSON error of a token-endpoint reader's result, if that is what it reported.
fn token_json_error(r: &Result<(), Error>) -> Option<&JsonError> {
    match r {
        Err(Error::Response {
            endpoint: Endpoint::Token,
            reason: ResponseError::Json(e),
        }) => Some(e),
        _ => None,
    }
}

fn claims_json_error(r: &Result<(), TokenError>) -> Option<&JsonError> {
    match r {
        Err(TokenError::Json(e)) => Some(e),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let tree = parse_object(data).err();
    let id = readers::id_token_claims(data);
    let access = readers::access_token_claims(data, "https://idp.example/i", "api", NOW);
    let response = readers::token_response(&response(200, &[], data.to_vec()));
    let stored = TokenSet::from_json(data);
    // Member rules are `Missing`/`Invalid`; everything else is a JSON verdict.
    let stored_json = match &stored {
        Err(JsonError::Missing(_) | JsonError::Invalid(_)) | Ok(_) => None,
        Err(e) => Some(e),
    };
    assert_eq!(claims_json_error(&id), tree.as_ref(), "ID-token payload");
    assert_eq!(claims_json_error(&access), tree.as_ref(), "access-token payload");
    assert_eq!(stored_json, tree.as_ref(), "stored token set");
    // The token response reports member types as JSON errors too (`Invalid`, `Missing`).
    match (&tree, token_json_error(&response)) {
        (Some(t), r) => assert_eq!(r, Some(t), "token response"),
        (None, Some(e)) => assert!(
            matches!(e, JsonError::Missing(_) | JsonError::Invalid(_)),
            "token response: {e:?} for a document the tree reader accepts"
        ),
        (None, None) => {}
    }
});
