use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::event::UserId;
use crate::fixtures::{note_data, ACCOUNT_UPDATE, ORDER_UPDATE, POSITION_UPDATE, TRADE_EXECUTED};

fn position_json(symbol: &str) -> Value {
    let mut data = note_data(POSITION_UPDATE);
    data["symbol"] = json!(symbol);
    data
}

fn order_json() -> Value {
    note_data(ORDER_UPDATE)
}

fn account_json() -> Value {
    note_data(ACCOUNT_UPDATE)
}

fn trade_json() -> Value {
    note_data(TRADE_EXECUTED)
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Checks that `json` parses into a [`ServerMessage`] that writes back the
/// same JSON, and that the output parses to an equal message.
fn assert_server_round_trip(json: &Value) -> ServerMessage {
    let message: ServerMessage = serde_json::from_value(json.clone()).unwrap();
    let written = serde_json::to_string(&message).unwrap();
    assert_eq!(&serde_json::from_str::<Value>(&written).unwrap(), json);
    assert_eq!(serde_json::from_str::<ServerMessage>(&written).unwrap(), message);
    message
}

/// Checks that `message` writes `expected` and decodes back to itself.
fn assert_client_wire(message: ClientMessage, expected: Value) {
    let written = serde_json::to_string(&message).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&written).unwrap(), expected);
    assert_eq!(decode_client(&written), Ok(message));
}

#[test]
fn note_batch_example_round_trips() {
    // The note's example, placeholders replaced by the note's own objects.
    let note = json!({
        "type": "batch",
        "timestamp": "2026-01-03T15:30:45.123Z",
        "userId": "user-abc-123",
        "data": {
            "positions": [position_json("AAPL"), position_json("MSFT")],
            "orders": [order_json(), order_json()],
            "account": account_json(),
            "trades": [trade_json()]
        }
    });
    let message = assert_server_round_trip(&note);
    let ServerMessage::Batch(batch) = &message else {
        panic!("wrong variant: {message:?}");
    };
    assert_eq!(batch.seq, None);
    assert_eq!(batch.data.positions.len(), 2);
    assert_eq!(batch.data.positions[1].symbol.as_str(), "MSFT");
    assert_eq!(batch.data.orders.len(), 2);
    assert!(batch.data.account.is_some());
    assert_eq!(batch.data.trades.len(), 1);

    // As the gateway sends it: with the highest seq it covers.
    let mut with_seq = note.clone();
    with_seq["seq"] = json!(1042);
    let message = assert_server_round_trip(&with_seq);
    assert_eq!(message.seq(), Some(1042));
    assert_eq!(message.type_name(), "batch");
}

#[test]
fn batch_omits_empty_parts_and_defaults_them_on_input() {
    let only_positions = json!({
        "type": "batch",
        "seq": 7,
        "timestamp": "2026-01-03T15:30:45.123Z",
        "userId": "user-abc-123",
        "data": { "positions": [position_json("AAPL")] }
    });
    let message = assert_server_round_trip(&only_positions);
    let ServerMessage::Batch(batch) = message else {
        panic!("wrong variant");
    };
    assert!(batch.data.orders.is_empty() && batch.data.trades.is_empty());
    assert!(batch.data.account.is_none());

    // Explicit empty arrays and a null account read the same and are dropped.
    let explicit = json!({
        "type": "batch",
        "seq": 7,
        "timestamp": "2026-01-03T15:30:45.123Z",
        "userId": "user-abc-123",
        "data": { "positions": [position_json("AAPL")], "orders": [], "account": null, "trades": [] }
    });
    let parsed: ServerMessage = serde_json::from_value(explicit).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), only_positions);

    let empty = BatchData::default();
    assert!(empty.is_empty());
    assert_eq!(serde_json::to_value(&empty).unwrap(), json!({}));
    assert!(!batch.data.is_empty());
}

#[test]
fn batch_data_is_filtered_by_channel() {
    let data: BatchData = serde_json::from_value(json!({
        "positions": [position_json("AAPL")],
        "orders": [order_json()],
        "account": account_json(),
        "trades": [trade_json()]
    }))
    .unwrap();
    let all = data.filtered(|_| true);
    assert_eq!(all, data);
    let none = data.filtered(|_| false);
    assert!(none.is_empty());
    let positions = data.filtered(|c| c == Channel::Positions);
    assert_eq!(positions.positions, data.positions);
    assert!(positions.orders.is_empty() && positions.account.is_none() && positions.trades.is_empty());
    let account_and_trades = data.filtered(|c| matches!(c, Channel::Account | Channel::Trades));
    assert!(account_and_trades.positions.is_empty() && account_and_trades.orders.is_empty());
    assert_eq!(account_and_trades.account, data.account);
    assert_eq!(account_and_trades.trades, data.trades);
}

#[test]
fn events_convert_to_identical_server_messages() {
    let envelope = |kind: &str, data: Value| {
        json!({
            "type": kind,
            "seq": 3,
            "timestamp": "2026-01-03T15:30:45.123Z",
            "userId": "user-abc-123",
            "data": data
        })
    };
    for json in [
        envelope("position_update", position_json("AAPL")),
        envelope("order_update", order_json()),
        envelope("account_update", account_json()),
        envelope("trade_executed", trade_json()),
    ] {
        let event: Event = serde_json::from_value(json.clone()).unwrap();
        let type_name = event.type_name();
        let message = ServerMessage::from(event);
        assert_eq!(serde_json::to_value(&message).unwrap(), json);
        assert_eq!(message.type_name(), type_name);
        assert_eq!(message.seq(), Some(3));
        assert_server_round_trip(&json);
    }
}

#[test]
fn every_server_message_round_trips() {
    let subscribed = json!({
        "type": "subscribed",
        "channels": ["positions", "orders", "account", "trades"],
        "seq": 1041,
        "epoch": "01HZX3"
    });
    let message = assert_server_round_trip(&subscribed);
    assert_eq!(
        message,
        ServerMessage::Subscribed { channels: Channel::ALL.to_vec(), seq: 1041, epoch: Some("01HZX3".into()) }
    );
    assert_server_round_trip(&json!({ "type": "subscribed", "channels": [], "seq": 0 }));

    let snapshot = json!({
        "type": "snapshot",
        "seq": 1041,
        "epoch": "01HZX3",
        "timestamp": "2026-01-03T15:30:45.123Z",
        "data": {
            "positions": [position_json("AAPL")],
            "orders": [order_json()],
            "account": account_json(),
            "trades": [trade_json()]
        }
    });
    let message = assert_server_round_trip(&snapshot);
    assert_eq!(message.seq(), Some(1041));
    // An empty portfolio still says so explicitly.
    let empty = ServerMessage::Snapshot {
        seq: 0,
        epoch: None,
        timestamp: ts("2026-01-03T15:30:45.123Z"),
        data: SnapshotData::default(),
    };
    let empty_json = json!({
        "type": "snapshot",
        "seq": 0,
        "timestamp": "2026-01-03T15:30:45.123Z",
        "data": { "positions": [], "orders": [], "trades": [] }
    });
    assert_eq!(serde_json::to_value(&empty).unwrap(), empty_json);
    assert_server_round_trip(&empty_json);
    let sparse: ServerMessage = serde_json::from_value(json!({
        "type": "snapshot", "seq": 0, "timestamp": "2026-01-03T15:30:45.123Z", "data": {}
    }))
    .unwrap();
    assert_eq!(sparse, empty);

    for id in [json!(17), json!(-3), json!(1.5), json!("abc-1"), json!(u64::MAX)] {
        let pong = json!({ "type": "pong", "id": id, "timestamp": "2026-01-03T15:30:45.123Z" });
        assert_server_round_trip(&pong);
    }
    let message = assert_server_round_trip(&json!({ "type": "pong", "timestamp": "2026-01-03T15:30:45.123Z" }));
    assert_eq!(message.seq(), None);

    for code in ErrorCode::ALL {
        let error = json!({ "type": "error", "code": code.as_str(), "message": "nope" });
        let message = assert_server_round_trip(&error);
        assert_eq!(message, ServerMessage::error(code, "nope"));
        assert_eq!(message.type_name(), "error");
    }
}

#[test]
fn server_messages_match_their_type_names() {
    let messages = [
        ServerMessage::Subscribed { channels: vec![], seq: 0, epoch: None },
        ServerMessage::Pong { id: None, timestamp: ts("2026-01-03T15:30:45.123Z") },
        ServerMessage::error(ErrorCode::Internal, "x"),
        ServerMessage::Batch(
            Envelope::new(UserId::new("u1").unwrap(), ts("2026-01-03T15:30:45.123Z"), BatchData::default()).with_seq(1),
        ),
    ];
    for message in messages {
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["type"], json!(message.type_name()));
    }
}

#[test]
fn every_client_message_round_trips() {
    assert_client_wire(
        ClientMessage::Subscribe {
            channels: vec![Channel::Positions, Channel::Orders, Channel::Account],
            since: None,
            epoch: None,
            deltas: false,
        },
        json!({ "type": "subscribe", "channels": ["positions", "orders", "account"] }),
    );
    assert_client_wire(
        ClientMessage::Subscribe { channels: vec![Channel::Positions], since: None, epoch: None, deltas: true },
        json!({ "type": "subscribe", "channels": ["positions"], "deltas": true }),
    );
    assert_client_wire(
        ClientMessage::Subscribe {
            channels: vec![Channel::Trades],
            since: Some(1041),
            epoch: Some("01HZX3".into()),
            deltas: false,
        },
        json!({ "type": "subscribe", "channels": ["trades"], "since": 1041, "epoch": "01HZX3" }),
    );
    assert_client_wire(
        ClientMessage::Unsubscribe { channels: vec![Channel::Account] },
        json!({ "type": "unsubscribe", "channels": ["account"] }),
    );
    assert_client_wire(
        ClientMessage::CatchUp { since_sequence: 123, epoch: None },
        json!({ "type": "catch_up", "since_sequence": 123 }),
    );
    assert_client_wire(
        ClientMessage::CatchUp { since_sequence: u64::MAX, epoch: Some("e".into()) },
        json!({ "type": "catch_up", "since_sequence": u64::MAX, "epoch": "e" }),
    );
    assert_client_wire(ClientMessage::Ping { id: None }, json!({ "type": "ping" }));
    assert_client_wire(
        ClientMessage::Ping { id: Some(PingId::Number(42.into())) },
        json!({ "type": "ping", "id": 42 }),
    );
    assert_client_wire(
        ClientMessage::Ping { id: Some(PingId::Text("a".repeat(PingId::MAX_LEN))) },
        json!({ "type": "ping", "id": "a".repeat(PingId::MAX_LEN) }),
    );
}

#[test]
fn decodes_the_notes_messages_and_lenient_forms() {
    // Exactly as the note writes them (strict JSON).
    assert_eq!(
        decode_client(r#"{"type":"subscribe","channels":["positions","orders","account"]}"#),
        Ok(ClientMessage::Subscribe {
            channels: vec![Channel::Positions, Channel::Orders, Channel::Account],
            since: None,
            epoch: None,
            deltas: false,
        })
    );
    assert_eq!(
        decode_client(r#"{"type": "catch_up", "since_sequence": 123}"#),
        Ok(ClientMessage::CatchUp { since_sequence: 123, epoch: None })
    );
    // camelCase alias, nulls for optional fields, unknown fields ignored.
    assert_eq!(
        decode_client(r#"{"type":"catch_up","sinceSequence":5,"epoch":null,"requestId":9}"#),
        Ok(ClientMessage::CatchUp { since_sequence: 5, epoch: None })
    );
    assert_eq!(
        decode_client(r#"{"channels":[],"since":null,"type":"subscribe","extra":{"a":[1]}}"#),
        Ok(ClientMessage::Subscribe { channels: vec![], since: None, epoch: None, deltas: false })
    );
    // A float ping id (performance.now()) is echoed as given.
    let Ok(ClientMessage::Ping { id: Some(id) }) = decode_client(r#"{"type":"ping","id":1234.5}"#) else {
        panic!("float ping id refused");
    };
    let pong = ServerMessage::Pong { id: Some(id), timestamp: ts("2026-01-03T15:30:45.123Z") };
    assert_eq!(serde_json::to_value(&pong).unwrap()["id"], json!(1234.5));
    // An integer beyond i64 is read as a float; what the pong writes reads
    // back as the same number (the fuzzer's find: without serde_json's
    // `float_roundtrip` the two readings differed in the last bit).
    let text = r#"{"type": "ping", "id":-27777777777777761001}"#;
    let message = decode_client(text).expect("a huge ping id");
    let again = serde_json::to_string(&message).unwrap();
    assert_eq!(decode_client(&again), Ok(message), "{again}");
}

fn invalid_field(text: &str) -> (String, Option<String>, String) {
    match decode_client(text) {
        Err(ProtocolError::InvalidMessage { message_type, field, reason }) => (message_type.to_owned(), field, reason),
        other => panic!("{text}: expected InvalidMessage, got {other:?}"),
    }
}

#[test]
fn malformed_input_gets_the_right_typed_error() {
    for text in ["", "nope", "{", r#"{"type":"ping""#, "{'type':'ping'}", "{type: 'ping'}", "\u{0}"] {
        let err = decode_client(text).unwrap_err();
        assert!(matches!(err, ProtocolError::InvalidJson { .. }), "{text:?}: {err:?}");
        assert_eq!(err.code(), ErrorCode::InvalidJson);
    }
    for text in ["[]", "5", "null", r#""ping""#, r#"[{"type":"ping"}]"#] {
        let err = decode_client(text).unwrap_err();
        assert_eq!(err, ProtocolError::NotAnObject, "{text}");
        assert_eq!(err.code(), ErrorCode::InvalidMessage);
    }
    for text in ["{}", r#"{"channels":["positions"]}"#, r#"{"type":5}"#, r#"{"type":null}"#, r#"{"type":["ping"]}"#] {
        let err = decode_client(text).unwrap_err();
        assert_eq!(err, ProtocolError::MissingType, "{text}");
        assert_eq!(err.code(), ErrorCode::UnknownType);
    }
    for (text, name) in [
        (r#"{"type":"nope"}"#, "nope"),
        (r#"{"type":"Subscribe","channels":[]}"#, "Subscribe"),
        (r#"{"type":"catchUp","since_sequence":1}"#, "catchUp"),
        (r#"{"type":"position_update"}"#, "position_update"),
        (r#"{"type":""}"#, ""),
    ] {
        let err = decode_client(text).unwrap_err();
        assert_eq!(err, ProtocolError::UnknownType(name.into()), "{text}");
        assert_eq!(err.code(), ErrorCode::UnknownType);
    }

    let (kind, field, reason) = invalid_field(r#"{"type":"subscribe","channels":"x"}"#);
    assert_eq!((kind.as_str(), field.as_deref()), ("subscribe", Some("channels")));
    assert!(reason.contains("invalid type"), "{reason}");
    let (_, field, reason) = invalid_field(r#"{"type":"subscribe"}"#);
    assert_eq!(field.as_deref(), Some("channels"));
    assert!(reason.contains("missing field"), "{reason}");
    let (_, field, _) = invalid_field(r#"{"type":"unsubscribe","channels":[1]}"#);
    assert_eq!(field.as_deref(), Some("channels"));
    let (_, field, _) = invalid_field(r#"{"type":"subscribe","channels":["positions"],"since":"5"}"#);
    assert_eq!(field.as_deref(), Some("since"));
    let (_, field, _) = invalid_field(r#"{"type":"subscribe","channels":["positions"],"since":-1,"zzz":1}"#);
    assert_eq!(field.as_deref(), Some("since"));
    let (_, field, _) = invalid_field(r#"{"type":"subscribe","channels":["orders"],"epoch":7}"#);
    assert_eq!(field.as_deref(), Some("epoch"));
    let (kind, field, _) = invalid_field(r#"{"type":"catch_up"}"#);
    assert_eq!((kind.as_str(), field.as_deref()), ("catch_up", Some("since_sequence")));
    let (_, field, _) = invalid_field(r#"{"type":"catch_up","since_sequence":1.5}"#);
    assert_eq!(field.as_deref(), Some("since_sequence"));
    let (_, field, _) = invalid_field(r#"{"type":"ping","id":{"nested":true}}"#);
    assert_eq!(field.as_deref(), Some("id"));
    let too_long = format!(r#"{{"type":"ping","id":"{}"}}"#, "a".repeat(PingId::MAX_LEN + 1));
    let (_, field, _) = invalid_field(&too_long);
    assert_eq!(field.as_deref(), Some("id"));
    let (_, field, _) = invalid_field(r#"{"type":"ping","id":true}"#);
    assert_eq!(field.as_deref(), Some("id"));
}

#[test]
fn huge_numbers_are_refused_not_wrapped_or_rounded() {
    // Beyond u64: parsed as a float by the JSON layer, refused as a field.
    let (_, field, reason) = invalid_field(r#"{"type":"catch_up","since_sequence":18446744073709551616}"#);
    assert_eq!(field.as_deref(), Some("since_sequence"));
    assert!(reason.contains("expected u64"), "{reason}");
    let (_, field, _) = invalid_field(r#"{"type":"subscribe","channels":[],"since":1e19}"#);
    assert_eq!(field.as_deref(), Some("since"));
    let (_, field, _) = invalid_field(r#"{"type":"catch_up","since_sequence":-1}"#);
    assert_eq!(field.as_deref(), Some("since_sequence"));
    // Beyond f64: not representable JSON for us at all.
    let err = decode_client(r#"{"type":"catch_up","since_sequence":1e400}"#).unwrap_err();
    assert!(matches!(err, ProtocolError::InvalidJson { .. }), "{err:?}");
    let digits = format!(r#"{{"type":"ping","id":{}}}"#, "9".repeat(400));
    let err = decode_client(&digits).unwrap_err();
    assert!(matches!(err, ProtocolError::InvalidJson { .. }), "{err:?}");
    // The largest valid value still works.
    assert_eq!(
        decode_client(r#"{"type":"catch_up","since_sequence":18446744073709551615}"#),
        Ok(ClientMessage::CatchUp { since_sequence: u64::MAX, epoch: None })
    );
}

#[test]
fn unknown_channel_is_named() {
    for (text, name) in [
        (r#"{"type":"subscribe","channels":["positions","pnl"]}"#, "pnl"),
        (r#"{"type":"unsubscribe","channels":["Positions"]}"#, "Positions"),
        (r#"{"type":"subscribe","channels":[""]}"#, ""),
    ] {
        let err = decode_client(text).unwrap_err();
        assert_eq!(err, ProtocolError::UnknownChannel(name.into()), "{text}");
        assert_eq!(err.code(), ErrorCode::InvalidMessage);
        assert!(err.to_string().contains("positions, orders, account, trades"));
    }
    // Only where channels mean something.
    assert!(decode_client(r#"{"type":"ping","channels":["pnl"]}"#).is_ok());
}

#[test]
fn many_unknown_fields_do_not_hide_the_error() {
    let padding: String = (0..5_000).map(|i| format!(r#""k{i}":{i},"#)).collect();
    let text = format!(r#"{{{padding}"type":"catch_up","since_sequence":"x"}}"#);
    let err = decode_client(&text).unwrap_err();
    // Too many fields to look for the culprit, but still the right error.
    assert!(matches!(&err, ProtocolError::InvalidMessage { message_type: "catch_up", field: None, .. }), "{err:?}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!(r#"{{"type":"ping","x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    let err = decode_client(&deep).unwrap_err();
    assert!(matches!(err, ProtocolError::InvalidJson { .. }), "{err:?}");
}

#[test]
fn error_text_is_bounded_and_maps_to_an_error_message() {
    let long_type = "x".repeat(10_000);
    let err = decode_client(&format!(r#"{{"type":"{long_type}"}}"#)).unwrap_err();
    let text = err.to_string();
    assert!(text.len() < 300, "{} bytes", text.len());
    assert!(text.contains('…'));
    let long_channel = format!(r#"{{"type":"subscribe","channels":["{}"]}}"#, "é".repeat(10_000));
    assert!(decode_client(&long_channel).unwrap_err().to_string().len() < 300);
    let long_value = format!(r#"{{"type":"subscribe","channels":"{}"}}"#, "y".repeat(10_000));
    assert!(decode_client(&long_value).unwrap_err().to_string().len() < 400);

    let err = decode_client(r#"{"type":"subscribe","channels":"x"}"#).unwrap_err();
    let ServerMessage::Error { code, message } = err.to_server_message() else {
        panic!("not an error message");
    };
    assert_eq!(code, ErrorCode::InvalidMessage);
    assert!(message.starts_with(r#"invalid subscribe message: field "channels": "#), "{message}");

    assert_eq!(ProtocolError::TooLarge { len: 70_000, max: 65_536 }.code(), ErrorCode::MessageTooLarge);
    assert_eq!(ProtocolError::Binary.code(), ErrorCode::BinaryNotSupported);
    let json = serde_json::to_value(ProtocolError::Binary.to_server_message()).unwrap();
    assert_eq!(json["type"], json!("error"));
    assert_eq!(json["code"], json!("binary_not_supported"));
}

fn channel() -> impl Strategy<Value = Channel> {
    prop::sample::select(Channel::ALL.to_vec())
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    let epoch = prop::option::of("[A-Za-z0-9]{0,26}");
    let ping_id = prop::option::of(prop_oneof![
        any::<u64>().prop_map(|n| PingId::Number(n.into())),
        any::<i64>().prop_map(|n| PingId::Number(n.into())),
        "\\PC{0,16}".prop_map(PingId::Text),
    ]);
    prop_oneof![
        (prop::collection::vec(channel(), 0..6), any::<Option<u64>>(), epoch.clone())
            .prop_map(|(channels, since, epoch)| ClientMessage::Subscribe { channels, since, epoch, deltas: false }),
        prop::collection::vec(channel(), 0..6).prop_map(|channels| ClientMessage::Unsubscribe { channels }),
        (any::<u64>(), epoch).prop_map(|(since_sequence, epoch)| ClientMessage::CatchUp { since_sequence, epoch }),
        ping_id.prop_map(|id| ClientMessage::Ping { id }),
    ]
}

/// JSON-looking text assembled from protocol fragments, so the fuzzing
/// reaches past the JSON parser into the field checks.
fn almost_json() -> impl Strategy<Value = String> {
    let key =
        prop::sample::select(vec!["type", "channels", "since", "epoch", "since_sequence", "sinceSequence", "id", "x"]);
    let value = prop::sample::select(vec![
        "\"subscribe\"",
        "\"unsubscribe\"",
        "\"catch_up\"",
        "\"ping\"",
        "\"positions\"",
        "[\"orders\",\"trades\"]",
        "[\"nope\"]",
        "[1]",
        "[]",
        "{}",
        "null",
        "true",
        "-1",
        "0",
        "1.5",
        "1e400",
        "18446744073709551616",
        "\"\"",
        "[[[[",
        "\"\\ud800\"",
    ]);
    prop::collection::vec((key, value), 0..5).prop_map(|pairs| {
        let body: Vec<String> = pairs.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    #[test]
    fn decode_client_never_panics(text in "\\PC*") {
        let _ = decode_client(&text);
    }

    #[test]
    fn decode_client_never_panics_on_near_misses(text in almost_json()) {
        if let Err(err) = decode_client(&text) {
            // Every failure maps to a code and a sendable message.
            let message = err.to_server_message();
            prop_assert!(serde_json::to_string(&message).is_ok());
        }
    }

    #[test]
    fn client_messages_round_trip(message in client_message()) {
        let text = serde_json::to_string(&message).unwrap();
        prop_assert_eq!(decode_client(&text), Ok(message));
    }
}
