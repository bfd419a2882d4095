//! The publish call's layout: what `publish.lua` reads from `KEYS` and
//! `ARGV`, built the same way for `RedisLog` and for the bench's baseline.

use std::time::Duration;

use fred::prelude::Value;
use fred::types::scripts::Script;

use common::event::{OrderStatus, UserId};
use common::fixtures as conformance;

use super::{publish_script_call, Durability, PublishArgs, PUBLISH_LUA};
use crate::error::LogError;
use crate::keys::UserKeys;
use crate::log::{Encoded, LogSettings, NewEvent};

const EPOCH: &str = "00000000000000ab";

fn settings() -> LogSettings {
    LogSettings { stream_maxlen: 500, dedupe_ttl: Duration::from_secs(60) }
}

#[test]
fn publish_call_follows_the_scripts_layout() {
    let user = UserId::new("u1").expect("user");
    let new = NewEvent::new(conformance::order(&user, "o-1", OrderStatus::Accepted), "job:1");
    let (keys, args) = publish_script_call(&new, &settings(), EPOCH).expect("call");

    let k = UserKeys::new(&user);
    let dedupe = k.dedupe("job:1");
    assert_eq!(keys, [k.meta, k.events, k.positions, k.orders, k.account, k.trades, dedupe]);
    let encoded = Encoded::new(&new.event).expect("encoded");
    let expected =
        [&encoded.head, &encoded.rest, &encoded.data, "o", "o-1", "0", "500", "60", EPOCH, &k.notify, "50", "0"];
    assert_eq!(args, expected);

    // What `RedisLog` sends: the SHA and the key count, then the same.
    let script = Script::from_lua(PUBLISH_LUA);
    let call = PublishArgs::new(&script, &settings(), Durability::NONE).call(&new, EPOCH.to_owned()).expect("call");
    assert_eq!(call[0].as_str().as_deref(), Some(&**script.sha1()));
    assert_eq!(call[1], Value::Integer(7));
    let rest: Vec<String> = call.into_iter().skip(2).map(|v| v.into_string().expect("text")).collect();
    assert_eq!(rest, [keys, args].concat());
}

#[test]
fn closed_orders_and_other_effects_are_flagged() {
    let user = UserId::new("u1").expect("user");
    let arg = |event, i: usize| {
        publish_script_call(&NewEvent::new(event, "d"), &settings(), EPOCH).expect("call").1[i].clone()
    };
    assert_eq!(arg(conformance::order(&user, "o-1", OrderStatus::Filled), 5), "1");
    assert_eq!(arg(conformance::position(&user, "AAPL", 0, 100), 3), "p");
    assert_eq!(arg(conformance::position(&user, "AAPL", 0, 100), 5), "1");
    assert_eq!(arg(conformance::account(&user, 100), 3), "a");
    assert_eq!(arg(conformance::trade(&user, "t-1"), 3), "t");
}

#[test]
fn a_bad_dedupe_id_is_refused_before_anything_is_built() {
    let user = UserId::new("u1").expect("user");
    let new = NewEvent::new(conformance::account(&user, 100), "");
    assert!(matches!(publish_script_call(&new, &settings(), EPOCH), Err(LogError::InvalidEvent(_))));
}
