//! Cleaning provider-controlled text before an error carries it (a leaf module: the JSON
//! reader and the error type both use it). Public as [`crate::error::provider_text`].

/// Longest provider-controlled text kept in an error, in characters (errors are logged; keep
/// them bounded).
pub const MAX_PROVIDER_TEXT: usize = 256;

/// A provider-controlled string as an error may carry it: control characters (C0, DEL, C1:
/// newlines, escape sequences) and bidirectional-text controls (U+061C, U+200E/F,
/// U+202A–U+202E, U+2066–U+2069, which reorder what a terminal or log viewer shows) are
/// removed, and at most [`MAX_PROVIDER_TEXT`] characters are kept. The one place where error
/// texts from outside are cleaned.
///
/// ```
/// use authpi_idp::error::provider_text;
/// assert_eq!(provider_text("bad\r\n[INFO] forged\u{1b}[0m"), "bad[INFO] forged[0m");
/// assert_eq!(provider_text(&"x".repeat(5000)).len(), 256);
/// ```
#[must_use]
pub fn provider_text(text: &str) -> String {
    text.chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .take(MAX_PROVIDER_TEXT)
        .collect()
}

pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}
