//! Parsing of KRPC packets into [`Message`]s: strict bencode, liberal about key order and
//! unknown keys, precise about what is wrong and whether the sender may be told.
//!
//! Two steps, neither allocating: read the top-level dictionary in one validating pass, keeping
//! the spans of the keys we know (a syntax error anywhere is answered with silence); then
//! interpret `t`, `y` and the body from those spans. Once `t` is known and `y` is `q`, a
//! semantic error carries the transaction id so the node can answer with a 203 error.

use super::bencode::{Decoder, Raw, SyntaxError};
use super::error::{Field, KrpcError, KrpcErrorKind};
use super::message::{
    compact_addr, Body, CompactNodesV4, CompactNodesV6, Message, Method, Query, Response, Values,
    Want,
};
use super::{MAX_TOKEN_LEN, MAX_TRANSACTION_ID_LEN};
use crate::{InfoHash, NodeId};

impl From<SyntaxError> for KrpcErrorKind {
    fn from(e: SyntaxError) -> Self {
        match e {
            SyntaxError::Malformed => Self::Malformed,
            SyntaxError::TooDeep => Self::TooDeep,
        }
    }
}

/// The top-level keys we read (the last of duplicates wins); others are skipped.
#[derive(Default)]
struct Top<'a> {
    t: Option<Raw<'a>>,
    y: Option<Raw<'a>>,
    q: Option<Raw<'a>>,
    a: Section<'a>,
    r: Section<'a>,
    e: Option<Raw<'a>>,
    ip: Option<Raw<'a>>,
    ro: Option<Raw<'a>>,
    v: Option<Raw<'a>>,
}

/// The value of `a` or `r`, read in the same pass as the top level (and in place: it is big).
#[derive(Default)]
struct Section<'a> {
    state: State,
    /// If a dictionary, the keys we know.
    args: Args<'a>,
}

/// Whether a section was present, and a dictionary.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Absent,
    Dict,
    NotADict,
}

/// The keys of `a` or `r` we read (the last of duplicates wins); others are skipped.
#[derive(Default)]
struct Args<'a> {
    id: Option<Raw<'a>>,
    target: Option<Raw<'a>>,
    info_hash: Option<Raw<'a>>,
    port: Option<Raw<'a>>,
    implied_port: Option<Raw<'a>>,
    token: Option<Raw<'a>>,
    want: Option<Raw<'a>>,
    noseed: Option<Raw<'a>>,
    scrape: Option<Raw<'a>>,
    seed: Option<Raw<'a>>,
    nodes: Option<Raw<'a>>,
    nodes6: Option<Raw<'a>>,
    values: Option<Raw<'a>>,
    samples: Option<Raw<'a>>,
    interval: Option<Raw<'a>>,
    num: Option<Raw<'a>>,
}

impl<'a> Args<'a> {
    /// Records `value` if `key` is one we read.
    fn set(&mut self, key: &[u8], value: Raw<'a>) {
        let slot = match key {
            b"id" => &mut self.id,
            b"target" => &mut self.target,
            b"info_hash" => &mut self.info_hash,
            b"port" => &mut self.port,
            b"implied_port" => &mut self.implied_port,
            b"token" => &mut self.token,
            b"want" => &mut self.want,
            b"noseed" => &mut self.noseed,
            b"scrape" => &mut self.scrape,
            b"seed" => &mut self.seed,
            b"nodes" => &mut self.nodes,
            b"nodes6" => &mut self.nodes6,
            b"values" => &mut self.values,
            b"samples" => &mut self.samples,
            b"interval" => &mut self.interval,
            b"num" => &mut self.num,
            _ => return,
        };
        *slot = Some(value);
    }
}

/// Reads the top-level dictionary in one validating pass, keeping the spans of the keys we
/// know (and the known keys of `a` and `r`); returns them and whether bytes follow.
fn read_top<'a>(packet: &'a [u8], top: &mut Top<'a>) -> Result<bool, SyntaxError> {
    let mut d = Decoder::new(packet);
    if !d.eat(b'd') {
        return Err(SyntaxError::Malformed);
    }
    while !d.eat(b'e') {
        let key = d.bytes()?;
        let slot = match key {
            b"a" => {
                section(&mut d, &mut top.a)?;
                continue;
            }
            b"r" => {
                section(&mut d, &mut top.r)?;
                continue;
            }
            b"t" => &mut top.t,
            b"y" => &mut top.y,
            b"q" => &mut top.q,
            b"e" => &mut top.e,
            b"ip" => &mut top.ip,
            b"ro" => &mut top.ro,
            b"v" => &mut top.v,
            _ => {
                d.value(1)?;
                continue;
            }
        };
        *slot = Some(d.value(1)?);
    }
    Ok(!d.is_at_end())
}

/// Reads the value of `a` or `r` (at depth 1): a dictionary's known keys are collected as its
/// entries are validated.
fn section<'a>(d: &mut Decoder<'a>, section: &mut Section<'a>) -> Result<(), SyntaxError> {
    if section.state != State::Absent {
        *section = Section::default(); // a duplicate key: the last wins
    }
    if !d.eat(b'd') {
        d.value(1)?;
        section.state = State::NotADict;
        return Ok(());
    }
    section.state = State::Dict;
    while !d.eat(b'e') {
        let key = d.bytes()?;
        section.args.set(key, d.value(2)?);
    }
    Ok(())
}

/// The arguments of a section, or `Missing`/`Invalid` of `field`.
fn dict<'s, 'a>(section: &'s Section<'a>, field: Field) -> Result<&'s Args<'a>, KrpcErrorKind> {
    match section.state {
        State::Dict => Ok(&section.args),
        State::NotADict => Err(KrpcErrorKind::Invalid(field)),
        State::Absent => Err(KrpcErrorKind::Missing(field)),
    }
}

/// Parses one KRPC packet. Allocates nothing; never panics, whatever the input.
///
/// Accepted liberally: keys in any order, unknown keys at any level (skipped, within
/// [`MAX_DEPTH`](super::MAX_DEPTH)), arguments a method does not use (not checked), an `ip` of
/// the wrong length (ignored). Refused: anything that is not one well-formed bencoded dict,
/// missing or ill-typed required keys, ids that are not 20 bytes, ports outside 0..=65535,
/// transaction ids and tokens longer than the caps. See [`KrpcError`] for what to answer.
pub fn parse_message(packet: &[u8]) -> Result<Message<'_>, KrpcError<'_>> {
    let silent = |kind| KrpcError {
        kind,
        transaction_id: None,
    };
    if packet.first() != Some(&b'd') {
        // Bencode, but not a dict, or not bencode at all.
        return Err(silent(match Decoder::new(packet).value(0) {
            Ok(_) => KrpcErrorKind::NotADict,
            Err(e) => e.into(),
        }));
    }
    // Filled in place: `Top` is a few hundred bytes, not worth copying.
    let mut top = Top::default();
    let trailing = read_top(packet, &mut top).map_err(|e| silent(e.into()))?;
    let transaction_id = required(top.t, Field::T)
        .and_then(|t| t.bytes().ok_or(KrpcErrorKind::Invalid(Field::T)))
        .and_then(|t| capped(t, MAX_TRANSACTION_ID_LEN, Field::T))
        .map_err(silent)?;
    let y = required(top.y, Field::Y)
        .and_then(|y| y.bytes().ok_or(KrpcErrorKind::Invalid(Field::Y)))
        .map_err(silent)?;
    let fail = |kind| KrpcError {
        kind,
        transaction_id: (y == b"q").then_some(transaction_id),
    };
    if trailing {
        return Err(fail(KrpcErrorKind::TrailingBytes));
    }
    let body = match y {
        b"q" => parse_query(top.q, &top.a).map(Body::Query),
        b"r" => parse_response(&top.r).map(Body::Response),
        b"e" => parse_error(top.e),
        _ => Err(KrpcErrorKind::Invalid(Field::Y)),
    }
    .map_err(fail)?;

    Ok(Message {
        transaction_id,
        body,
        ip: top.ip.and_then(Raw::bytes).and_then(compact_addr),
        read_only: top.ro.and_then(Raw::int).is_some_and(|ro| ro != 0),
        version: top.v.and_then(Raw::bytes),
    })
}

fn required(raw: Option<Raw<'_>>, field: Field) -> Result<Raw<'_>, KrpcErrorKind> {
    raw.ok_or(KrpcErrorKind::Missing(field))
}

fn capped(bytes: &[u8], max: usize, field: Field) -> Result<&[u8], KrpcErrorKind> {
    if bytes.len() > max {
        Err(KrpcErrorKind::TooLong(field))
    } else {
        Ok(bytes)
    }
}

/// A required 20-byte string.
fn id20(raw: Option<Raw<'_>>, field: Field) -> Result<[u8; 20], KrpcErrorKind> {
    required(raw, field)?
        .bytes()
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or(KrpcErrorKind::Invalid(field))
}

/// An optional byte string.
fn opt_bytes<'a>(raw: Option<Raw<'a>>, field: Field) -> Result<Option<&'a [u8]>, KrpcErrorKind> {
    raw.map(|r| r.bytes().ok_or(KrpcErrorKind::Invalid(field)))
        .transpose()
}

/// An optional integer.
fn opt_int(raw: Option<Raw<'_>>, field: Field) -> Result<Option<i64>, KrpcErrorKind> {
    raw.map(|r| r.int().ok_or(KrpcErrorKind::Invalid(field)))
        .transpose()
}

/// An optional integer flag: absent or 0 is false, any other integer true.
fn flag(raw: Option<Raw<'_>>, field: Field) -> Result<bool, KrpcErrorKind> {
    Ok(opt_int(raw, field)?.is_some_and(|v| v != 0))
}

/// `want`: a list whose byte strings `n4` and `n6` are recognised; other items are ignored.
fn want(raw: Option<Raw<'_>>) -> Result<Want, KrpcErrorKind> {
    let mut want = Want::default();
    let Some(raw) = raw else {
        return Ok(want);
    };
    for item in raw.list().ok_or(KrpcErrorKind::Invalid(Field::Want))? {
        match item.bytes() {
            Some(b"n4") => want.n4 = true,
            Some(b"n6") => want.n6 = true,
            _ => {}
        }
    }
    Ok(want)
}

fn parse_query<'a>(q: Option<Raw<'a>>, a: &Section<'a>) -> Result<Query<'a>, KrpcErrorKind> {
    let name = required(q, Field::Q)?
        .bytes()
        .ok_or(KrpcErrorKind::Invalid(Field::Q))?;
    let args = dict(a, Field::A)?;
    let id = NodeId(id20(args.id, Field::Id)?);
    let want = want(args.want)?;
    let method = match name {
        b"ping" => Method::Ping,
        b"find_node" => Method::FindNode {
            target: NodeId(id20(args.target, Field::Target)?),
        },
        b"get_peers" => Method::GetPeers {
            info_hash: InfoHash(id20(args.info_hash, Field::InfoHash)?),
            noseed: flag(args.noseed, Field::Noseed)?,
            scrape: flag(args.scrape, Field::Scrape)?,
        },
        b"announce_peer" => {
            let info_hash = InfoHash(id20(args.info_hash, Field::InfoHash)?);
            let implied_port = flag(args.implied_port, Field::ImpliedPort)?;
            let port = args.port.and_then(Raw::int).map(u16::try_from);
            let port = match (implied_port, port) {
                (_, Some(Ok(port))) => port,
                (true, _) => 0,
                (false, None) if args.port.is_none() => {
                    return Err(KrpcErrorKind::Missing(Field::Port))
                }
                (false, _) => return Err(KrpcErrorKind::Invalid(Field::Port)),
            };
            let token = required(args.token, Field::Token)?
                .bytes()
                .ok_or(KrpcErrorKind::Invalid(Field::Token))?;
            Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token: capped(token, MAX_TOKEN_LEN, Field::Token)?,
                seed: flag(args.seed, Field::Seed)?,
            }
        }
        b"sample_infohashes" => Method::SampleInfohashes {
            target: NodeId(id20(args.target, Field::Target)?),
        },
        _ => {
            // Unknown semantics: only a well-formed 20-byte string counts.
            Method::Unknown {
                name,
                target: args
                    .target
                    .and_then(Raw::bytes)
                    .and_then(NodeId::from_slice),
                info_hash: args
                    .info_hash
                    .and_then(Raw::bytes)
                    .and_then(InfoHash::from_slice),
            }
        }
    };
    Ok(Query { id, method, want })
}

fn parse_response<'a>(r: &Section<'a>) -> Result<Response<'a>, KrpcErrorKind> {
    let args = dict(r, Field::R)?;
    let values = match args.values {
        None => Values::default(),
        Some(raw) => {
            let items = raw
                .list_body()
                .ok_or(KrpcErrorKind::Invalid(Field::Values))?;
            let list = raw.list().ok_or(KrpcErrorKind::Invalid(Field::Values))?;
            for item in list {
                item.bytes().ok_or(KrpcErrorKind::Invalid(Field::Values))?;
            }
            Values::from_items(items)
        }
    };
    let token = opt_bytes(args.token, Field::Token)?
        .map(|t| capped(t, MAX_TOKEN_LEN, Field::Token))
        .transpose()?;
    Ok(Response {
        id: NodeId(id20(args.id, Field::Id)?),
        nodes: CompactNodesV4::new(opt_bytes(args.nodes, Field::Nodes)?.unwrap_or_default()),
        nodes6: CompactNodesV6::new(opt_bytes(args.nodes6, Field::Nodes6)?.unwrap_or_default()),
        values,
        token,
        samples: opt_bytes(args.samples, Field::Samples)?.unwrap_or_default(),
        interval: opt_int(args.interval, Field::Interval)?,
        num: opt_int(args.num, Field::Num)?,
    })
}

/// `e`: `[code, message]`; further items are ignored.
fn parse_error(e: Option<Raw<'_>>) -> Result<Body<'_>, KrpcErrorKind> {
    let invalid = KrpcErrorKind::Invalid(Field::E);
    let mut items = required(e, Field::E)?.list().ok_or(invalid)?;
    let code = items.next().and_then(Raw::int).ok_or(invalid)?;
    let message = items.next().and_then(Raw::bytes).ok_or(invalid)?;
    Ok(Body::Error { code, message })
}

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod tests;
