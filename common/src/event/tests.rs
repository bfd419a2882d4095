use serde_json::{json, Value};

use super::*;
use crate::fixtures::{ACCOUNT_UPDATE, ORDER_UPDATE, POSITION_UPDATE, TRADE_EXECUTED};

/// Parses `text` into an [`Event`], checks that it serializes back to the
/// same JSON (as a `Value`, so key order and whitespace do not matter but
/// every decimal's digits do), and that the output parses to an equal event.
fn assert_round_trip(text: &str) -> Event {
    let original: Value = serde_json::from_str(text).unwrap();
    let event: Event = serde_json::from_str(text).unwrap();
    let written = serde_json::to_string(&event).unwrap();
    let rewritten: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(rewritten, original);
    let reparsed: Event = serde_json::from_str(&written).unwrap();
    assert_eq!(reparsed, event);
    event
}

/// `text` with the value at `pointer` replaced (or added).
fn with(text: &str, pointer: &str, value: Value) -> String {
    let mut json: Value = serde_json::from_str(text).unwrap();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    json.pointer_mut(parent).unwrap()[key] = value;
    json.to_string()
}

fn parse(text: &str) -> Result<Event, serde_json::Error> {
    serde_json::from_str(text)
}

#[test]
fn position_update_example_round_trips() {
    let event = assert_round_trip(POSITION_UPDATE);
    let Event::PositionUpdate(envelope) = &event else {
        panic!("wrong variant: {event:?}");
    };
    assert_eq!(envelope.user_id.as_str(), "user-abc-123");
    assert_eq!(envelope.seq, None);
    assert_eq!(envelope.data.symbol.as_str(), "AAPL");
    assert_eq!(envelope.data.side, PositionSide::Long);
    assert_eq!(envelope.data.unrealized_pnl.to_string(), "525.00");
    assert_eq!(event.channel(), Channel::Positions);
    assert_eq!(event.type_name(), "position_update");
    assert!(!event.is_urgent());
}

#[test]
fn order_update_example_round_trips() {
    let event = assert_round_trip(ORDER_UPDATE);
    let Event::OrderUpdate(envelope) = &event else {
        panic!("wrong variant: {event:?}");
    };
    assert_eq!(envelope.data.order_type, OrderType::Limit);
    assert_eq!(envelope.data.status, OrderStatus::Filled);
    assert_eq!(envelope.data.limit_price.map(|p| p.to_string()).as_deref(), Some("246.00"));
    assert_eq!(envelope.data.stop_price, None);
    assert_eq!(event.channel(), Channel::Orders);
    assert_eq!(event.type_name(), "order_update");
    assert!(event.is_urgent());
}

#[test]
fn account_update_example_round_trips() {
    let event = assert_round_trip(ACCOUNT_UPDATE);
    let Event::AccountUpdate(envelope) = &event else {
        panic!("wrong variant: {event:?}");
    };
    assert_eq!(envelope.data.day_pnl_percent.to_string(), "1.20");
    assert_eq!(event.channel(), Channel::Account);
    assert_eq!(event.type_name(), "account_update");
    assert!(!event.is_urgent());
}

#[test]
fn trade_executed_example_round_trips() {
    let event = assert_round_trip(TRADE_EXECUTED);
    let Event::TradeExecuted(envelope) = &event else {
        panic!("wrong variant: {event:?}");
    };
    assert_eq!(envelope.data.side, OrderSide::Sell);
    assert_eq!(envelope.data.pnl.map(|p| p.to_string()).as_deref(), Some("1250.00"));
    assert_eq!(event.channel(), Channel::Trades);
    assert_eq!(event.type_name(), "trade_executed");
    assert!(event.is_urgent());
}

#[test]
fn optional_fields_are_omitted_when_absent() {
    // A market order that has not filled, a trade without realized P&L.
    let order = with(
        ORDER_UPDATE,
        "/data",
        json!({
            "orderId": "order-1", "symbol": "TSLA", "side": "sell", "type": "market",
            "status": "new", "qty": "5", "filledQty": "0"
        }),
    );
    assert_round_trip(&order);
    let trade = with(
        TRADE_EXECUTED,
        "/data",
        json!({
            "tradeId": "t-1", "symbol": "BRK.B", "side": "buy", "quantity": "0.5",
            "price": "410.1234", "executedAt": "2026-01-03T15:30:45.000Z"
        }),
    );
    assert_round_trip(&trade);
}

#[test]
fn json_number_for_a_decimal_is_a_typed_error() {
    for (text, pointer) in [
        (POSITION_UPDATE, "/data/quantity"),
        (POSITION_UPDATE, "/data/unrealizedPnl"),
        (ORDER_UPDATE, "/data/limitPrice"),
        (ACCOUNT_UPDATE, "/data/equity"),
        (TRADE_EXECUTED, "/data/pnl"),
    ] {
        for number in [json!(100), json!(175.5), json!(-1), json!(1e300)] {
            let input = with(text, pointer, number.clone());
            let err = parse(&input).expect_err(&format!("{pointer} = {number} was accepted"));
            assert_eq!(err.classify(), serde_json::error::Category::Data, "{err}");
            assert!(err.to_string().contains("invalid type"), "{err}");
        }
    }
}

#[test]
fn a_decimal_string_that_is_not_a_number_is_refused() {
    for bad in ["", "abc", "1,5", "NaN", "1e400"] {
        let input = with(POSITION_UPDATE, "/data/currentPrice", json!(bad));
        assert!(parse(&input).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn invalid_user_id_is_refused() {
    for bad in ["user{abc}", "u:{u:other}", "", "has space", "ünïcode", "a\nb"] {
        let input = with(POSITION_UPDATE, "/userId", json!(bad));
        let err = parse(&input).expect_err(&format!("{bad:?} was accepted"));
        assert!(err.to_string().contains("invalid user id"), "{err}");
    }
    let too_long = "u".repeat(UserId::MAX_LEN + 1);
    assert!(parse(&with(POSITION_UPDATE, "/userId", json!(too_long))).is_err());
    assert_eq!(UserId::new("user{abc}"), Err(ModelError::InvalidUserId));
    assert!(UserId::new("auth0|abc").is_err());
    assert!(UserId::new("user-abc_1.2@example.com:9").is_ok());
    assert!(UserId::new("u".repeat(UserId::MAX_LEN)).is_ok());
}

#[test]
fn invalid_symbol_is_refused() {
    for bad in
        ["", "AAPL{x}", "A B", "$AAPL", "..", "/", "-A", "A.", "BRK/", "./AAPL", "A//B", "A/../B", "A/./B", "A/.../B"]
    {
        let input = with(POSITION_UPDATE, "/data/symbol", json!(bad));
        assert!(parse(&input).is_err(), "{bad:?} was accepted");
    }
    assert!(Symbol::new("BRK.B").is_ok());
    assert!(Symbol::new("BTC/USD").is_ok());
    assert!(Symbol::new("A").is_ok());
    assert!(Symbol::new("A-B.C").is_ok());
    assert!(Symbol::new("A..B").is_ok(), "dots inside a part change no path");
}

#[test]
fn unknown_or_missing_event_type_is_an_error() {
    let err = parse(&with(POSITION_UPDATE, "/type", json!("position_deleted"))).unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
    let err = parse(&with(POSITION_UPDATE, "/type", json!("batch"))).unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
    let mut json: Value = serde_json::from_str(POSITION_UPDATE).unwrap();
    json.as_object_mut().unwrap().remove("type");
    assert!(parse(&json.to_string()).is_err());
    // A known type with another type's data is refused, not coerced.
    assert!(parse(&with(ORDER_UPDATE, "/type", json!("position_update"))).is_err());
    assert!(parse(&with(ACCOUNT_UPDATE, "/type", json!("trade_executed"))).is_err());
    let err = parse(&with(ORDER_UPDATE, "/data/status", json!("teleported"))).unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
}

#[test]
fn timestamps_serialize_with_millis_and_z() {
    let cases = [
        ("2026-01-03T15:30:45Z", "2026-01-03T15:30:45.000Z"),
        ("2026-01-03T15:30:45.1Z", "2026-01-03T15:30:45.100Z"),
        ("2026-01-03T15:30:45.123456789Z", "2026-01-03T15:30:45.123Z"),
        ("2026-01-03T17:30:45.123+02:00", "2026-01-03T15:30:45.123Z"),
        ("2026-01-03T10:30:45.999-05:00", "2026-01-03T15:30:45.999Z"),
    ];
    for (input, expected) in cases {
        let at: Timestamp = input.parse().unwrap();
        assert_eq!(serde_json::to_value(at).unwrap(), json!(expected), "{input}");
        assert_eq!(at.to_string(), expected);
    }
    let at = Timestamp::from_unix_millis(1_767_454_245_123).unwrap();
    assert_eq!(at.to_string(), "2026-01-03T15:30:45.123Z");
    assert_eq!(at.unix_millis(), 1_767_454_245_123);
    let now = Timestamp::now().to_string();
    assert_eq!(now.len(), "2026-01-03T15:30:45.123Z".len(), "{now}");
    assert!(now.ends_with('Z') && now.as_bytes()[19] == b'.', "{now}");
    // An event's envelope and data timestamps use the same format.
    let input = with(ACCOUNT_UPDATE, "/timestamp", json!("2026-01-03T15:30:45Z"));
    let out = serde_json::to_value(parse(&input).unwrap()).unwrap();
    assert_eq!(out["timestamp"], json!("2026-01-03T15:30:45.000Z"));
    for bad in ["2026-01-03", "yesterday", "2026-01-03T15:30:45", "1767454245123"] {
        let input = with(ACCOUNT_UPDATE, "/timestamp", json!(bad));
        assert!(parse(&input).is_err(), "{bad:?} was accepted");
    }
    assert!(parse(&with(ACCOUNT_UPDATE, "/timestamp", json!(1_767_454_245_123u64))).is_err());
}

#[test]
fn seq_is_emitted_when_set_and_omitted_when_not() {
    let mut event = parse(POSITION_UPDATE).unwrap();
    assert!(serde_json::to_value(&event).unwrap().get("seq").is_none());
    event.set_seq(Some(42));
    assert_eq!(event.seq(), Some(42));
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["seq"], json!(42));
    let reparsed: Event = serde_json::from_value(json).unwrap();
    assert_eq!(reparsed, event);
    event.set_seq(None);
    assert!(serde_json::to_value(&event).unwrap().get("seq").is_none());
    let max = with(POSITION_UPDATE, "/seq", json!(u64::MAX));
    assert_eq!(parse(&max).unwrap().seq(), Some(u64::MAX));
    for bad in [json!(-1), json!("1"), json!(1.5)] {
        assert!(parse(&with(POSITION_UPDATE, "/seq", bad)).is_err());
    }
}

#[test]
fn accessors_read_the_envelope() {
    let event = parse(TRADE_EXECUTED).unwrap();
    assert_eq!(event.user_id().as_str(), "user-abc-123");
    assert_eq!(event.timestamp().to_string(), "2026-01-03T15:30:45.123Z");
}

#[test]
fn order_status_is_closed() {
    use OrderStatus::*;
    for status in [Filled, Canceled, Expired, Replaced, Rejected, Failed] {
        assert!(status.is_closed(), "{status:?}");
    }
    for status in [
        PendingNew,
        New,
        Accepted,
        AcceptedForBidding,
        PartiallyFilled,
        DoneForDay,
        PendingCancel,
        PendingReplace,
        Stopped,
        Suspended,
        Calculated,
    ] {
        assert!(!status.is_closed(), "{status:?}");
    }
    let wire: OrderStatus = serde_json::from_value(json!("partially_filled")).unwrap();
    assert_eq!(wire, PartiallyFilled);
    assert_eq!(serde_json::to_value(AcceptedForBidding).unwrap(), json!("accepted_for_bidding"));
}

#[test]
fn position_is_closed_at_zero_quantity() {
    let Event::PositionUpdate(envelope) = parse(POSITION_UPDATE).unwrap() else {
        panic!("wrong variant");
    };
    let mut position = envelope.data;
    assert!(!position.is_closed());
    for zero in ["0", "0.000", "-0"] {
        position.quantity = zero.parse().unwrap();
        assert!(position.is_closed(), "{zero}");
    }
    position.quantity = "0.0001".parse().unwrap();
    assert!(!position.is_closed());
}

#[test]
fn channels_have_stable_wire_names() {
    for channel in Channel::ALL {
        assert_eq!(serde_json::to_value(channel).unwrap(), json!(channel.as_str()));
    }
    assert!(serde_json::from_value::<Channel>(json!("Positions")).is_err());
}
