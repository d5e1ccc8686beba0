//! Strict JSON: the one parser every response, token and stored value goes through.
//!
//! Rules (see the crate's manual):
//! - a duplicate member name anywhere in a document is an error (`{"sub":"a","sub":"b"}` is the
//!   classic token-substitution trick, and serde_json would silently keep the last one);
//! - nesting is bounded by [`MAX_DEPTH`] (serde_json's recursion limit), documents by
//!   [`MAX_DOCUMENT`];
//! - errors carry the position and a member *name*, never a value: a response body can hold
//!   tokens, and error messages end up in logs.
//!
//! Two ways in, same rules. Documents read once and whole (discovery, JWKS, UserInfo) become a
//! strict `Value` tree ([`parse_object`]). The hot paths (the token response, the JOSE header,
//! the ID-token payload, a stored token set) are read in one pass straight into their types
//! ([`parse_typed`] with an [`Object`]): each modeled member is read where it stands (a second
//! occurrence is a duplicate, see [`once`]), members nobody keeps are walked without being built
//! ([`Skip`]), and strings without escapes are borrowed from the input.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// The largest JSON document the core accepts (1 MiB), whatever the transport allows.
pub const MAX_DOCUMENT: usize = 1 << 20;

/// The deepest nesting of arrays and objects the core accepts, the outer one included
/// (serde_json's recursion limit: 128 levels refused, 127 accepted).
pub const MAX_DEPTH: usize = 127;

/// Why a JSON document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Not JSON at all, or truncated.
    #[error("malformed JSON at line {line}, column {column}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The document is JSON but its top level is not an object.
    #[error("the JSON document is not an object")]
    NotAnObject,
    /// A member name occurs twice in one object.
    #[error("duplicate JSON member `{0}`")]
    DuplicateMember(String),
    /// The document is larger than [`MAX_DOCUMENT`].
    #[error("JSON document larger than {MAX_DOCUMENT} bytes")]
    TooLarge,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`] levels.
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A required member is absent (or `null`).
    #[error("missing member `{0}`")]
    Missing(&'static str),
    /// A member has the wrong JSON type or an out-of-range value.
    #[error("member `{0}` has the wrong type or value")]
    Invalid(&'static str),
}

/// Parses `bytes` as a JSON object under the strict rules of this module.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    match parse_value(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

/// Parses `bytes` as any JSON value under the strict rules of this module.
pub fn parse_value(bytes: &[u8]) -> Result<Value, JsonError> {
    if bytes.len() > MAX_DOCUMENT {
        return Err(JsonError::TooLarge);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize_from(&mut de).map_err(|e| classify(&e))?;
    de.end().map_err(|e| classify(&e))?;
    Ok(value)
}

/// Parses `bytes`, a JSON object, straight into `T` under the strict rules of this module: one
/// pass, no `Value` tree, strings borrowed from `bytes` where `T` wants them. `T` reads the
/// members it models ([`Object`]); a duplicate member name anywhere is an error.
pub(crate) fn parse_typed<'de, T: Object<'de> + Default>(bytes: &'de [u8]) -> Result<T, JsonError> {
    if bytes.len() > MAX_DOCUMENT {
        return Err(JsonError::TooLarge);
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // Not an object: say whether it is JSON at all, exactly as `parse_object` does.
        return Err(parse_value(bytes).err().unwrap_or(JsonError::NotAnObject));
    }
    // One UTF-8 check of the whole document, then serde_json's `str` reader, which does not
    // check each string again (about a seventh of the cost of reading an ID-token payload).
    // Invalid UTF-8 goes through the byte reader, which reports where it is.
    match std::str::from_utf8(bytes) {
        Ok(text) => read_object(&mut serde_json::Deserializer::from_str(text)),
        Err(_) => read_object(&mut serde_json::Deserializer::from_slice(bytes)),
    }
}

fn read_object<'de, R, T>(de: &mut serde_json::Deserializer<R>) -> Result<T, JsonError>
where
    R: serde_json::de::Read<'de>,
    T: Object<'de> + Default,
{
    let value = de
        .deserialize_map(ObjectOf(T::default()))
        .map_err(|e| classify(&e))?;
    de.end().map_err(|e| classify(&e))?;
    Ok(value)
}

/// One member's value as the typed parsers see it: scalars as sent, strings borrowed when they
/// have no escapes, arrays and objects walked (duplicates refused) but not built. `Debug` shows
/// a string's length only: the strings read this way include tokens.
#[derive(Clone, PartialEq)]
pub(crate) enum Scalar<'de> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// Any other number.
    F64(f64),
    /// A string.
    Str(Cow<'de, str>),
    /// An array or an object.
    Compound,
}

impl fmt::Debug for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("Null"),
            Scalar::Bool(b) => write!(f, "Bool({b})"),
            Scalar::U64(u) => write!(f, "U64({u})"),
            Scalar::I64(i) => write!(f, "I64({i})"),
            Scalar::F64(x) => write!(f, "F64({x})"),
            Scalar::Str(s) => write!(f, "Str(<{} bytes>)", s.len()),
            Scalar::Compound => f.write_str("Compound"),
        }
    }
}

impl<'a> Scalar<'a> {
    /// The scalar view of a member of a parsed `Value` tree.
    pub(crate) fn of(value: &'a Value) -> Scalar<'a> {
        match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::number(n),
            Value::String(s) => Scalar::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Scalar::Compound,
        }
    }

    fn number(n: &serde_json::Number) -> Scalar<'a> {
        match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Scalar::U64(u),
            (None, Some(i)) => Scalar::I64(i),
            (None, None) => Scalar::F64(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    /// A number as whole non-negative seconds: see [`number_to_u64`].
    fn whole_u64(&self) -> Option<u64> {
        match *self {
            Scalar::U64(u) => Some(u),
            Scalar::F64(f) => f64_to_u64(f).filter(|_| f.fract() == 0.0),
            _ => None,
        }
    }
}

/// Reads a [`Scalar`] (the seed of every member a typed parser models as a scalar).
pub(crate) struct ScalarSeed;

impl<'de> de::DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Scalar<'de>, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        // serde_json gives non-negative integers as u64; keep the rule if another format doesn't.
        Ok(u64::try_from(v).map_or(Scalar::I64(v), Scalar::U64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
        CheckVisitor.visit_seq(seq).map(|()| Scalar::Compound)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
        CheckVisitor.visit_map(map).map(|()| Scalar::Compound)
    }
}

/// A value read leniently: only some JSON types mean something to it, and every other value
/// (arrays and objects walked, duplicate member names still refused) gives
/// [`otherwise`](Self::otherwise). Read through [`Leniently`].
pub(crate) trait Lenient<'de>: Sized {
    /// What is read.
    type Value;
    /// The value for a JSON type that means nothing here.
    fn otherwise(self) -> Self::Value;
    /// `null`.
    fn null(self) -> Self::Value {
        self.otherwise()
    }
    /// A string.
    fn string(self, _: &str) -> Self::Value {
        self.otherwise()
    }
    /// An array.
    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        CheckVisitor.visit_seq(seq).map(|()| self.otherwise())
    }
    /// An object.
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        CheckVisitor.visit_map(map).map(|()| self.otherwise())
    }
}

/// The seed (and visitor) of a [`Lenient`] reader.
pub(crate) struct Leniently<T>(pub(crate) T);

impl<'de, T: Lenient<'de>> de::DeserializeSeed<'de> for Leniently<T> {
    type Value = T::Value;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<T::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, T: Lenient<'de>> Visitor<'de> for Leniently<T> {
    type Value = T::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<T::Value, E> {
        Ok(self.0.otherwise())
    }
    fn visit_i64<E>(self, _: i64) -> Result<T::Value, E> {
        Ok(self.0.otherwise())
    }
    fn visit_u64<E>(self, _: u64) -> Result<T::Value, E> {
        Ok(self.0.otherwise())
    }
    fn visit_f64<E>(self, _: f64) -> Result<T::Value, E> {
        Ok(self.0.otherwise())
    }
    fn visit_str<E>(self, v: &str) -> Result<T::Value, E> {
        Ok(self.0.string(v))
    }
    fn visit_unit<E>(self) -> Result<T::Value, E> {
        Ok(self.0.null())
    }
    fn visit_none<E>(self) -> Result<T::Value, E> {
        Ok(self.0.null())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T::Value, A::Error> {
        self.0.seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T::Value, A::Error> {
        self.0.map(map)
    }
}

/// A JSON object read member by member into `Self` (through [`ObjectOf`]), with no `Value`
/// tree: the type reads the members it models, and the others are skipped, or kept in
/// [`custom`](Self::custom). Either way a member name seen twice is an error.
pub(crate) trait Object<'de>: Sized {
    /// Reads the value of member `key` if it is one of this type's (a second occurrence is a
    /// duplicate: see [`once`]); `Ok(false)` leaves the value unread.
    fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;

    /// Where the members [`member`](Self::member) left unread are kept (a token's custom
    /// claims, see [`keep`]); `None`, the default, skips them.
    fn custom(&mut self) -> Option<&mut Map<String, Value>> {
        None
    }
}

/// The visitor of an [`Object`]: a JSON object, read into `T`; any other JSON type is an error.
pub(crate) struct ObjectOf<T>(pub(crate) T);

impl<'de, T: Object<'de>> Visitor<'de> for ObjectOf<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut value = self.0;
        let mut seen = Names::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if value.member(&key, &mut map)? {
                continue;
            }
            match value.custom() {
                Some(custom) => keep(custom, key, &mut map)?,
                None => {
                    map.next_value_seed(Skip)?;
                    seen.insert(key)?;
                }
            }
        }
        Ok(value)
    }
}

/// Reads the value of member `key` into `custom` as a strict `Value` (the custom claims of a
/// token), refusing a name already there.
pub(crate) fn keep<'de, A: MapAccess<'de>>(
    custom: &mut Map<String, Value>,
    key: Cow<'de, str>,
    map: &mut A,
) -> Result<(), A::Error> {
    // The value first, as the `Value`-tree reader does: an error inside it is reported before
    // the duplicate name, so both readers give the same error for the same document.
    let value = map.next_value_seed(Seed)?;
    if custom.contains_key(&*key) {
        return Err(duplicate(&key));
    }
    custom.insert(key.into_owned(), value);
    Ok(())
}

/// Reads the value of member `name` into `slot` with `seed`, refusing a second occurrence.
pub(crate) fn once<'de, A, S>(
    map: &mut A,
    slot: &mut Option<S::Value>,
    seed: S,
    name: &str,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    S: de::DeserializeSeed<'de>,
{
    // The value first, as in `keep`.
    let value = map.next_value_seed(seed)?;
    if slot.is_some() {
        return Err(duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

/// The typed accessors of [`Members`], for a member read by a typed parser (`None`: absent).
pub(crate) trait Member {
    /// A string; `Ok(None)` when absent or `null`.
    fn string(self, name: &'static str) -> Result<Option<String>, JsonError>;
    /// Whole non-negative seconds ([`number_to_u64`]); `Ok(None)` when absent or `null`.
    fn seconds(self, name: &'static str) -> Result<Option<u64>, JsonError>;
    /// A boolean; `Ok(None)` when absent or `null`.
    fn boolean(self, name: &'static str) -> Result<Option<bool>, JsonError>;
}

impl Member for Option<Scalar<'_>> {
    fn string(self, name: &'static str) -> Result<Option<String>, JsonError> {
        match self {
            None | Some(Scalar::Null) => Ok(None),
            Some(Scalar::Str(s)) => Ok(Some(s.into_owned())),
            Some(_) => Err(JsonError::Invalid(name)),
        }
    }
    fn seconds(self, name: &'static str) -> Result<Option<u64>, JsonError> {
        match self {
            None | Some(Scalar::Null) => Ok(None),
            Some(s) => s.whole_u64().map(Some).ok_or(JsonError::Invalid(name)),
        }
    }
    fn boolean(self, name: &'static str) -> Result<Option<bool>, JsonError> {
        match self {
            None | Some(Scalar::Null) => Ok(None),
            Some(Scalar::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(JsonError::Invalid(name)),
        }
    }
}

/// Walks a document checking member names for duplicates; builds nothing.
struct CheckVisitor;

/// Walks one value checking member names for duplicates at any depth; builds nothing. The seed
/// for members a typed parser does not keep.
pub(crate) struct Skip;

impl<'de> de::DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(CheckVisitor)
    }
}

/// A member name, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

/// Objects with more members than this switch from a linear scan to a hash set, so that a
/// hostile object with many members costs linear time, not quadratic.
const LINEAR_KEYS: usize = 16;

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut names = Names::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            map.next_value_seed(Skip)?;
            names.insert(key)?;
        }
        Ok(())
    }
}

/// The member names of one object seen so far, to refuse a duplicate: a linear scan while
/// there are few, a hash set past [`LINEAR_KEYS`], so that a hostile object with many members
/// costs linear time, not quadratic. Allocates nothing until the first name.
#[derive(Default)]
struct Names<'de> {
    few: Vec<Cow<'de, str>>,
    many: HashSet<Cow<'de, str>>,
}

impl<'de> Names<'de> {
    /// Records `key`; a duplicate error if it was already recorded.
    fn insert<E: de::Error>(&mut self, key: Cow<'de, str>) -> Result<(), E> {
        let seen = if self.many.is_empty() {
            self.few.contains(&key)
        } else {
            self.many.contains(&key)
        };
        if seen {
            return Err(duplicate(&key));
        }
        if self.many.is_empty() && self.few.len() < LINEAR_KEYS {
            self.few.push(key);
        } else {
            self.many.extend(self.few.drain(..));
            self.many.insert(key);
        }
        Ok(())
    }
}

/// The error for a member name seen twice in one object (see [`classify`]).
fn duplicate<E: de::Error>(name: &str) -> E {
    de::Error::custom(format_args!(
        "{DUPLICATE_PREFIX}{}",
        crate::provider_text::provider_text(name)
    ))
}

fn classify(e: &serde_json::Error) -> JsonError {
    // Our own visitor reports duplicates as a custom error whose message is exactly the member
    // name behind a fixed prefix; every other serde_json error is positional.
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix(DUPLICATE_PREFIX) {
        let name = rest.split(" at line ").next().unwrap_or_default();
        return JsonError::DuplicateMember(crate::provider_text::provider_text(name));
    }
    if msg.starts_with("recursion limit exceeded") {
        return JsonError::TooDeep;
    }
    JsonError::Syntax {
        line: e.line(),
        column: e.column(),
    }
}

const DUPLICATE_PREFIX: &str = "duplicate member: ";

struct StrictValue;

impl StrictValue {
    fn deserialize_from<'de, D: Deserializer<'de>>(de: D) -> Result<Value, D::Error> {
        de.deserialize_any(StrictVisitor)
    }
}

/// Builds one value as a `Value` tree, refusing duplicate member names at any depth.
struct Seed;

impl<'de> de::DeserializeSeed<'de> for Seed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        StrictValue::deserialize_from(de)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Seed)?;
            if out.contains_key(&key) {
                return Err(duplicate(&key));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Typed, non-leaking accessors over a parsed object.
pub(crate) trait Members {
    /// The member as a string; `Ok(None)` when absent or `null`.
    fn opt_str(&self, name: &'static str) -> Result<Option<&str>, JsonError>;
    /// The member as a string; an error when absent.
    fn req_str(&self, name: &'static str) -> Result<&str, JsonError> {
        self.opt_str(name)?.ok_or(JsonError::Missing(name))
    }
    /// The member as a non-negative integer (a float with no fraction is accepted).
    fn opt_u64(&self, name: &'static str) -> Result<Option<u64>, JsonError>;
    /// The member as a boolean.
    fn opt_bool(&self, name: &'static str) -> Result<Option<bool>, JsonError>;
}

impl Members for Map<String, Value> {
    fn opt_str(&self, name: &'static str) -> Result<Option<&str>, JsonError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(JsonError::Invalid(name)),
        }
    }
    fn opt_u64(&self, name: &'static str) -> Result<Option<u64>, JsonError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => number_to_u64(n).map(Some).ok_or(JsonError::Invalid(name)),
            Some(_) => Err(JsonError::Invalid(name)),
        }
    }
    fn opt_bool(&self, name: &'static str) -> Result<Option<bool>, JsonError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(JsonError::Invalid(name)),
        }
    }
}

/// A JSON number as whole non-negative seconds: integers, and floats without a fraction part
/// (some providers emit `1767312000.0`). Negative, fractional or out-of-range values are `None`.
pub(crate) fn number_to_u64(n: &serde_json::Number) -> Option<u64> {
    Scalar::number(n).whole_u64()
}

/// `f` truncated to an integer, when it is finite, non-negative and below 2^64.
pub(crate) fn f64_to_u64(f: f64) -> Option<u64> {
    // 2^64 as f64; anything at or above it does not fit.
    if f.is_finite() && (0.0..18_446_744_073_709_551_616.0).contains(&f) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f.trunc() as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_member_at_top_level_is_rejected() {
        let err = parse_object(br#"{"sub":"a","sub":"b"}"#).unwrap_err();
        assert_eq!(err, JsonError::DuplicateMember("sub".into()));
    }

    #[test]
    fn duplicate_member_nested_is_rejected() {
        let err = parse_object(br#"{"organizations":[{"id":"org_1","id":"org_2"}]}"#).unwrap_err();
        assert_eq!(err, JsonError::DuplicateMember("id".into()));
    }

    #[test]
    fn escaped_duplicate_is_still_a_duplicate() {
        // "s\u0075b" is "sub" once unescaped.
        let err = parse_object(br#"{"sub":"a","s\u0075b":"b"}"#).unwrap_err();
        assert_eq!(err, JsonError::DuplicateMember("sub".into()));
    }

    #[test]
    fn non_objects_and_garbage_are_refused() {
        assert_eq!(parse_object(b"[1]").unwrap_err(), JsonError::NotAnObject);
        assert!(matches!(
            parse_object(b"{").unwrap_err(),
            JsonError::Syntax { .. }
        ));
        assert!(matches!(
            parse_object(b"{} x").unwrap_err(),
            JsonError::Syntax { .. }
        ));
        assert!(matches!(
            parse_object(b"").unwrap_err(),
            JsonError::Syntax { .. }
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let doc = format!("{{\"a\":{}}}", nested(100_000));
        assert_eq!(parse_object(doc.as_bytes()), Err(JsonError::TooDeep));
        // The boundary: MAX_DEPTH levels in all (the outer object is one).
        let at = format!("{{\"a\":{}}}", nested(MAX_DEPTH - 1));
        assert!(parse_object(at.as_bytes()).is_ok());
        let over = format!("{{\"a\":{}}}", nested(MAX_DEPTH));
        assert_eq!(over.matches('[').count() + 1, MAX_DEPTH + 1);
        assert_eq!(parse_object(over.as_bytes()), Err(JsonError::TooDeep));
        assert_eq!(
            parse_typed::<OnlyA<'_>>(over.as_bytes()).map(|_| ()),
            Err(JsonError::TooDeep)
        );
    }

    #[test]
    fn oversized_documents_are_refused() {
        let doc = vec![b' '; MAX_DOCUMENT + 1];
        assert_eq!(parse_object(&doc).unwrap_err(), JsonError::TooLarge);
    }

    /// A secret value placed wherever a broken document can put it — before a syntax error,
    /// in a member-name position, inside a bad escape or bad UTF-8, as the wrong type for a
    /// typed read, next to a duplicate, as a number out of range — never reaches an error's
    /// `Display` or `Debug`, whichever parser or accessor refuses it.
    #[test]
    fn errors_never_echo_values() {
        const SECRET: &str = "SECRET-VALUE-9f8e7d";
        let docs: Vec<String> = [
            r#"{"access_token":"@","x":}"#,
            r#"{"access_token":"@" "x":1}"#,
            r#"{"@"}"#,
            r#"{"@":}"#,
            r#"{"a":1,"@"]"#,
            r#"{@:1}"#,
            r#"{"a":@}"#,
            r#"{"a":"@\q"}"#,
            r#"{"a":"@\uZZZZ"}"#,
            r#"{"a":"@\ud800"}"#,
            r#"{"a":"@"#,
            r#"{"a":["@",}"#,
            r#"{"a":"@"}@"#,
            r#"["@"]"#,
            r#""@""#,
            r#"{"access_token":"@"}"#,
            r#"{"access_token":1,"expires_in":"@"}"#,
            r#"{"access_token":1,"inner":{"n":"@"}}"#,
            r#"{"access_token":1,"inner":"@"}"#,
            r#"{"access_token":["@"]}"#,
            r#"{"access_token":{"@":1}}"#,
            r#"{"access_token":1,"unknown":"@","access_token":2}"#,
            r#"{"a":"@","a":"@"}"#,
            r#"{"access_token":-1,"x":"@"}"#,
        ]
        .iter()
        .map(|d| d.replace('@', SECRET))
        .collect();
        let mut checked = 0;
        for doc in &docs {
            let mut errors: Vec<JsonError> = Vec::new();
            errors.extend(parse_object(doc.as_bytes()).err());
            errors.extend(parse_value(doc.as_bytes()).err());
            errors.extend(parse_typed::<OnlyA<'_>>(doc.as_bytes()).err());
            // A typed reader's member rules (`access_token` of the wrong type, …).
            errors.extend(crate::token::TokenSet::from_json(doc.as_bytes()).err());
            if let Ok(map) = parse_object(doc.as_bytes()) {
                errors.extend(map.opt_str("access_token").err());
                errors.extend(map.opt_u64("access_token").err());
                errors.extend(map.opt_u64("expires_in").err());
                errors.extend(map.opt_bool("a").err());
                errors.extend(map.opt_str("x").err());
            }
            // Bad UTF-8 right after the secret.
            let mut bytes = doc.clone().into_bytes();
            if let Some(at) = doc.find(SECRET) {
                bytes.insert(at + SECRET.len(), 0xff);
                errors.extend(parse_object(&bytes).err());
            }
            assert!(
                errors.len() >= 2,
                "{doc}: each document is refused somewhere"
            );
            for e in errors {
                for text in [e.to_string(), format!("{e:?}")] {
                    assert!(!text.contains("SECRET"), "{doc} -> {text}");
                }
                checked += 1;
            }
        }
        assert!(checked > 3 * docs.len(), "{checked}");
    }

    #[test]
    fn duplicates_past_the_linear_threshold_are_still_found() {
        // More than LINEAR_KEYS names: the hash-set path of `Names`, in both readers.
        let mut doc = String::from("{\"a\":1");
        for i in 0..40 {
            doc.push_str(&format!(",\"k{i}\":0"));
        }
        doc.push_str(",\"k3\":0}");
        let dup = Err(JsonError::DuplicateMember("k3".into()));
        assert_eq!(parse_typed::<OnlyA<'_>>(doc.as_bytes()).map(|_| ()), dup);
        assert_eq!(parse_object(doc.as_bytes()).map(|_| ()), dup);
    }

    /// An object with one modeled member, `a`.
    #[derive(Default, Debug)]
    struct OnlyA<'de> {
        a: Option<Scalar<'de>>,
    }

    impl<'de> Object<'de> for OnlyA<'de> {
        fn member<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
            if key != "a" {
                return Ok(false);
            }
            once(map, &mut self.a, ScalarSeed, key)?;
            Ok(true)
        }
    }

    #[test]
    fn typed_reading_applies_the_same_rules_and_reports_the_same_errors() {
        let docs: [&[u8]; 12] = [
            br#"{"a":"x\u00e9","b":[1,{"c":null}]}"#,
            br#"{"a":1,"a":2}"#,
            br#"{"a":1,"\u0061":2}"#,
            br#"{"b":1,"b":2}"#,
            br#"{"b":{"c":1,"c":2}}"#,
            b"{\"a\":\"\xff\"}",
            b"{\"b\":\"ok\", \"c\":\"\xc3\x28\"}",
            br#"{"a":1} x"#,
            br#"{"a":1,"a":[{"k":1,"k":2}]}"#,
            br#"{"b":1,"b":{"k":1,"k":2}}"#,
            br#"[1]"#,
            b"",
        ];
        for doc in docs {
            let typed = parse_typed::<OnlyA<'_>>(doc).map(|_| ());
            let tree = parse_object(doc).map(|_| ());
            assert_eq!(typed, tree, "{}", String::from_utf8_lossy(doc));
        }
        let ok = parse_typed::<OnlyA<'_>>(br#"{"a":"x\u00e9","z":2}"#).unwrap();
        assert_eq!(ok.a, Some(Scalar::Str("xé".into())));
        let borrowed = parse_typed::<OnlyA<'_>>(br#"{"a":"plain"}"#).unwrap();
        assert!(matches!(
            borrowed.a,
            Some(Scalar::Str(Cow::Borrowed("plain")))
        ));
    }

    #[test]
    fn numbers_as_seconds() {
        let m = parse_object(br#"{"a":3600,"b":3600.0,"c":-1,"d":1.5,"e":"3600"}"#).unwrap();
        assert_eq!(m.opt_u64("a"), Ok(Some(3600)));
        assert_eq!(m.opt_u64("b"), Ok(Some(3600)));
        assert_eq!(m.opt_u64("c"), Err(JsonError::Invalid("c")));
        assert_eq!(m.opt_u64("d"), Err(JsonError::Invalid("d")));
        assert_eq!(m.opt_u64("e"), Err(JsonError::Invalid("e")));
        assert_eq!(m.opt_u64("missing"), Ok(None));
    }
}
