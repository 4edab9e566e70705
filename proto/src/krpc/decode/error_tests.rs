//! Unit tests of KRPC parse errors: every error kind, with a transaction id (a query the node
//! may answer with a 203 error) and without (silence).

use super::*;
use crate::krpc::MAX_DEPTH;

fn query(packet: &[u8]) -> (Message<'_>, Query<'_>) {
    let msg = parse_message(packet).unwrap_or_else(|e| panic!("{e:?}"));
    let Body::Query(q) = msg.body else {
        panic!("not a query: {msg:?}")
    };
    (msg, q)
}

fn err(packet: &[u8]) -> KrpcError<'_> {
    parse_message(packet).expect_err("should be refused")
}

/// A query error that may be answered with transaction id `aa`.
fn answerable(kind: KrpcErrorKind) -> KrpcError<'static> {
    KrpcError {
        kind,
        transaction_id: Some(b"aa"),
    }
}

fn silent(kind: KrpcErrorKind) -> KrpcError<'static> {
    KrpcError {
        kind,
        transaction_id: None,
    }
}

#[test]
fn syntax_errors_are_silent() {
    assert_eq!(err(b""), silent(KrpcErrorKind::Malformed));
    assert_eq!(err(b"d1:t2:aa1:y1:q"), silent(KrpcErrorKind::Malformed));
    assert_eq!(
        err(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qi1ee"),
        silent(KrpcErrorKind::Malformed)
    );
    assert_eq!(err(b"d1:t3:aa1:y1:qe"), silent(KrpcErrorKind::Malformed));
    assert_eq!(err(b"le"), silent(KrpcErrorKind::NotADict));
    assert_eq!(err(b"i1e"), silent(KrpcErrorKind::NotADict));
    assert_eq!(err(b"4:spam"), silent(KrpcErrorKind::NotADict));
    let deep = [
        &b"d1:t2:aa1:y1:q1:x"[..],
        &[b'l'; MAX_DEPTH],
        &[b'e'; MAX_DEPTH],
        b"e",
    ]
    .concat();
    assert_eq!(err(&deep), silent(KrpcErrorKind::TooDeep));
    assert_eq!(err(&[b'l'; 10_000]), silent(KrpcErrorKind::TooDeep));
    assert_eq!(err(&[b'd'; 10_000]), silent(KrpcErrorKind::Malformed)); // `d` is not a key
}

#[test]
fn envelope_errors() {
    assert_eq!(err(b"d1:y1:qe"), silent(KrpcErrorKind::Missing(Field::T)));
    assert_eq!(
        err(b"d1:ti1e1:y1:qe"),
        silent(KrpcErrorKind::Invalid(Field::T))
    );
    let long_t = [&b"d1:t33:"[..], &[b'x'; 33], b"1:y1:qe"].concat();
    assert_eq!(err(&long_t), silent(KrpcErrorKind::TooLong(Field::T)));
    let max_t = [
        &b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t32:"[..],
        &[b'x'; 32],
        b"1:y1:qe",
    ]
    .concat();
    assert_eq!(query(&max_t).0.transaction_id, &[b'x'; 32]);
    assert_eq!(err(b"d1:t2:aae"), silent(KrpcErrorKind::Missing(Field::Y)));
    assert_eq!(
        err(b"d1:t2:aa1:yi1ee"),
        silent(KrpcErrorKind::Invalid(Field::Y))
    );
    assert_eq!(
        err(b"d1:t2:aa1:y1:xe"),
        silent(KrpcErrorKind::Invalid(Field::Y))
    );
    // Trailing bytes: a query may be told, a reply not.
    assert_eq!(
        err(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qexyz"),
        answerable(KrpcErrorKind::TrailingBytes)
    );
    assert_eq!(
        err(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:ree"),
        silent(KrpcErrorKind::TrailingBytes)
    );
}

#[test]
fn query_errors_are_answerable() {
    let cases: &[(&[u8], KrpcErrorKind)] = &[
        (b"d1:ade1:t2:aa1:y1:qe", KrpcErrorKind::Missing(Field::Q)),
        (b"d1:ade1:qi1e1:t2:aa1:y1:qe", KrpcErrorKind::Invalid(Field::Q)),
        (b"d1:q4:ping1:t2:aa1:y1:qe", KrpcErrorKind::Missing(Field::A)),
        (b"d1:ale1:q4:ping1:t2:aa1:y1:qe", KrpcErrorKind::Invalid(Field::A)),
        (b"d1:ade1:q4:ping1:t2:aa1:y1:qe", KrpcErrorKind::Missing(Field::Id)),
        (b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", KrpcErrorKind::Invalid(Field::Id)),
        (b"d1:ad2:idi1ee1:q4:ping1:t2:aa1:y1:qe", KrpcErrorKind::Invalid(Field::Id)),
        (
            b"d1:ad2:id20:abcdefghij01234567894:want2:n4e1:q4:ping1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Want),
        ),
        (
            b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe",
            KrpcErrorKind::Missing(Field::Target),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567896:target19:mnopqrstuvwxyz12345e1:q9:find_node1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Target),
        ),
        (
            b"d1:ad2:id20:abcdefghij0123456789e1:q17:sample_infohashes1:t2:aa1:y1:qe",
            KrpcErrorKind::Missing(Field::Target),
        ),
        (
            b"d1:ad2:id20:abcdefghij0123456789e1:q9:get_peers1:t2:aa1:y1:qe",
            KrpcErrorKind::Missing(Field::InfoHash),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash21:mnopqrstuvwxyz1234567e1:q9:get_peers1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::InfoHash),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234566:noseed1:1e1:q9:get_peers1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Noseed),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234566:scrapelee1:q9:get_peers1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Scrape),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567895:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Missing(Field::InfoHash),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Missing(Field::Port),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti65536e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Port),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti-1e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Port),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:port4:68815:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Port),
        ),
        (
            b"d1:ad2:id20:abcdefghij012345678912:implied_port1:19:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::ImpliedPort),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1ee1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Missing(Field::Token),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e5:tokeni1ee1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Token),
        ),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e4:seed0:5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcErrorKind::Invalid(Field::Seed),
        ),
    ];
    for (packet, kind) in cases {
        assert_eq!(
            err(packet),
            answerable(*kind),
            "{}",
            String::from_utf8_lossy(packet)
        );
    }
    let long_token = [
        &b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e5:token65:"[..],
        &[b'x'; 65],
        b"e1:q13:announce_peer1:t2:aa1:y1:qe",
    ]
    .concat();
    assert_eq!(
        err(&long_token),
        answerable(KrpcErrorKind::TooLong(Field::Token))
    );
    assert_eq!(err(&long_token).to_string(), "token too long");
}

#[test]
fn reply_and_error_errors_are_silent() {
    let cases: &[(&[u8], KrpcErrorKind)] = &[
        (b"d1:t2:aa1:y1:re", KrpcErrorKind::Missing(Field::R)),
        (b"d1:r0:1:t2:aa1:y1:re", KrpcErrorKind::Invalid(Field::R)),
        (b"d1:rde1:t2:aa1:y1:re", KrpcErrorKind::Missing(Field::Id)),
        (
            b"d1:rd2:id1:xe1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Id),
        ),
        (
            b"d1:rd2:id20:mnopqrstuvwxyz1234565:nodesi1ee1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Nodes),
        ),
        (
            b"d1:rd2:id20:mnopqrstuvwxyz1234566:nodes6lee1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Nodes6),
        ),
        (
            b"d1:rd2:id20:mnopqrstuvwxyz1234566:values6:abcdefe1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Values),
        ),
        (
            b"d1:rd2:id20:mnopqrstuvwxyz1234566:valuesl6:abcdefi1eee1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Values),
        ),
        (
            b"d1:rd2:id20:mnopqrstuvwxyz1234565:tokeni1ee1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Token),
        ),
        (
            b"d1:rd2:id20:mnopqrstuvwxyz1234567:samplesi1ee1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Samples),
        ),
        (
            b"d1:rd2:id20:mnopqrstuvwxyz1234568:interval1:1e1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Interval),
        ),
        (
            b"d1:rd2:id20:mnopqrstuvwxyz1234563:numlee1:t2:aa1:y1:re",
            KrpcErrorKind::Invalid(Field::Num),
        ),
        (b"d1:t2:aa1:y1:ee", KrpcErrorKind::Missing(Field::E)),
        (b"d1:ei201e1:t2:aa1:y1:ee", KrpcErrorKind::Invalid(Field::E)),
        (b"d1:elei1:t2:aa1:y1:ee", KrpcErrorKind::Malformed),
        (b"d1:ele1:t2:aa1:y1:ee", KrpcErrorKind::Invalid(Field::E)),
        (
            b"d1:eli201ee1:t2:aa1:y1:ee",
            KrpcErrorKind::Invalid(Field::E),
        ),
        (
            b"d1:el3:abci201ee1:t2:aa1:y1:ee",
            KrpcErrorKind::Invalid(Field::E),
        ),
    ];
    for (packet, kind) in cases {
        assert_eq!(
            err(packet),
            silent(*kind),
            "{}",
            String::from_utf8_lossy(packet)
        );
    }
    let long_token = [
        &b"d1:rd2:id20:mnopqrstuvwxyz1234565:token65:"[..],
        &[b'x'; 65],
        b"e1:t2:aa1:y1:re",
    ]
    .concat();
    assert_eq!(
        err(&long_token),
        silent(KrpcErrorKind::TooLong(Field::Token))
    );
}

#[test]
fn error_texts() {
    for (kind, text) in [
        (KrpcErrorKind::Malformed, "malformed bencode"),
        (KrpcErrorKind::TooDeep, "bencode nested too deep"),
        (KrpcErrorKind::NotADict, "message is not a dictionary"),
        (KrpcErrorKind::TrailingBytes, "trailing bytes after message"),
        (KrpcErrorKind::Missing(Field::InfoHash), "missing info_hash"),
        (KrpcErrorKind::Invalid(Field::Port), "invalid port"),
        (KrpcErrorKind::TooLong(Field::Token), "token too long"),
        (
            KrpcErrorKind::Missing(Field::ImpliedPort),
            "missing implied_port",
        ),
    ] {
        assert_eq!(kind.to_string(), text);
        assert_eq!(silent(kind).to_string(), text);
    }
}
