//! Any bytes as the SASL messages of one exchange, for every mechanism: the parsers of PLAIN and
//! SCRAM client messages must answer or refuse, never panic (the bytes come straight from an
//! unauthenticated peer). The first byte splits the input into two messages.
#![no_main]

use std::sync::OnceLock;

use broker::auth::{Exchange, Mechanism, Users};
use libfuzzer_sys::fuzz_target;

fn users() -> &'static Users {
    static U: OnceLock<Users> = OnceLock::new();
    U.get_or_init(|| {
        let mut u = Users::empty();
        u.add_entries(["alice:user:pw"], "fuzz").expect("users");
        u
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize).min(rest.len());
    let (first, second) = rest.split_at(at);
    for m in Mechanism::ALL {
        let mut ex = Exchange::start(m);
        let _ = ex.step(users(), first);
        let _ = ex.step(users(), second);
    }
});
