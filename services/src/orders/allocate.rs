//! Stock allocation for a batch of buys, in queue order, in memory. Pure, so the rules are
//! tested without a database; [`super::store`] feeds it the locked stock and the confirmed
//! (user, item) pairs.
//!
//! Rules, first match wins, buys taken in the order they were queued. The worker trusts nothing
//! it did not check: a buy is applied only if the API could have admitted it.
//! 1. `rejected_invalid`, with the reason ([`Invalid`]): an unknown item, a quantity outside
//!    1..=MAX_QTY, a time of acceptance outside the item's sale window, or an item that
//!    requires a purchase token without the API's signature ([`super::signature`]);
//! 2. the user already has a confirmed order for the item (earlier, or earlier in the batch):
//!    `rejected_duplicate`;
//! 3. enough stock left: `confirmed`, stock decreases;
//! 4. otherwise `rejected_sold_out`.

use std::collections::{HashMap, HashSet};

use shared::messages::MAX_QTY;
use uuid::Uuid;

/// A buy event as the worker received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buy {
    pub request_id: Uuid,
    pub user_id: i64,
    pub item_id: i64,
    pub qty: u32,
    pub accepted_at_ms: i64,
    pub partition: i32,
    pub offset: i64,
    /// It carries the API's valid signature.
    pub signed: bool,
}

/// What the sale of an item allows, as the `items` row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sale {
    /// Units left.
    pub stock: i32,
    /// The window buys may be accepted in, ms since the epoch; `None`: no bound.
    pub opens_at_ms: Option<i64>,
    pub closes_at_ms: Option<i64>,
    /// Only buys the API admitted (checking a purchase token) may buy it.
    pub require_token: bool,
}

/// Why a buy is `rejected_invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    UnknownItem,
    Quantity,
    OutsideSaleWindow,
    /// A token-required item, without the API's signature.
    Unsigned,
}

impl Invalid {
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::UnknownItem => "unknown_item",
            Invalid::Quantity => "quantity",
            Invalid::OutsideSaleWindow => "outside_sale_window",
            Invalid::Unsigned => "unsigned",
        }
    }

    pub const ALL: [Invalid; 4] = [
        Invalid::UnknownItem,
        Invalid::Quantity,
        Invalid::OutsideSaleWindow,
        Invalid::Unsigned,
    ];
}

/// How one buy was decided, and why it was invalid if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub invalid: Option<Invalid>,
}

impl Decision {
    fn of(outcome: Outcome) -> Self {
        Decision {
            outcome,
            invalid: None,
        }
    }
}

/// How the worker decided a buy: the `order_status` enum of the `orders` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "order_status", rename_all = "snake_case")]
pub enum Outcome {
    Confirmed,
    RejectedSoldOut,
    RejectedDuplicate,
    RejectedInvalid,
}

impl Outcome {
    /// The `order_status` enum value in the database.
    pub fn as_db(&self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::RejectedSoldOut => "rejected_sold_out",
            Outcome::RejectedDuplicate => "rejected_duplicate",
            Outcome::RejectedInvalid => "rejected_invalid",
        }
    }
}

/// Why `b`, of a known item on `sale`, could not have been admitted, if it could not.
fn invalid(b: &Buy, sale: &Sale) -> Option<Invalid> {
    if b.qty == 0 || b.qty > MAX_QTY {
        return Some(Invalid::Quantity);
    }
    let early = sale.opens_at_ms.is_some_and(|t| b.accepted_at_ms < t);
    let late = sale.closes_at_ms.is_some_and(|t| b.accepted_at_ms >= t);
    if early || late {
        return Some(Invalid::OutsideSaleWindow);
    }
    if sale.require_token && !b.signed {
        return Some(Invalid::Unsigned);
    }
    None
}

/// Decides every buy; `sales` (item -> its sale) has its stock updated in place.
pub fn allocate(
    buys: &[Buy],
    sales: &mut HashMap<i64, Sale>,
    confirmed: &HashSet<(i64, i64)>,
) -> Vec<Decision> {
    let mut confirmed_now: HashSet<(i64, i64)> = HashSet::new();
    buys.iter()
        .map(|b| {
            let rejected = |why| Decision {
                outcome: Outcome::RejectedInvalid,
                invalid: Some(why),
            };
            let Some(sale) = sales.get_mut(&b.item_id) else {
                return rejected(Invalid::UnknownItem);
            };
            if let Some(why) = invalid(b, sale) {
                return rejected(why);
            }
            let key = (b.user_id, b.item_id);
            if confirmed.contains(&key) || confirmed_now.contains(&key) {
                return Decision::of(Outcome::RejectedDuplicate);
            }
            let qty = b.qty as i32;
            if sale.stock >= qty {
                sale.stock -= qty;
                confirmed_now.insert(key);
                Decision::of(Outcome::Confirmed)
            } else {
                Decision::of(Outcome::RejectedSoldOut)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buy(user: i64, item: i64, qty: u32) -> Buy {
        Buy {
            request_id: Uuid::new_v4(),
            user_id: user,
            item_id: item,
            qty,
            accepted_at_ms: 0,
            partition: 0,
            offset: 0,
            signed: false,
        }
    }

    fn sales(items: &[(i64, i32)]) -> HashMap<i64, Sale> {
        items
            .iter()
            .map(|&(id, stock)| {
                (
                    id,
                    Sale {
                        stock,
                        ..Sale::default()
                    },
                )
            })
            .collect()
    }

    fn outcomes(d: Vec<Decision>) -> Vec<Outcome> {
        d.into_iter().map(|d| d.outcome).collect()
    }

    #[test]
    fn first_come_first_served_without_overselling() {
        let mut stock = sales(&[(1, 3)]);
        let buys = vec![buy(1, 1, 2), buy(2, 1, 2), buy(3, 1, 1), buy(4, 1, 1)];
        let out = outcomes(allocate(&buys, &mut stock, &HashSet::new()));
        use Outcome::*;
        assert_eq!(
            out,
            vec![Confirmed, RejectedSoldOut, Confirmed, RejectedSoldOut]
        );
        assert_eq!(stock[&1].stock, 0);
    }

    #[test]
    fn one_confirmed_order_per_user_and_item() {
        let mut stock = sales(&[(1, 10), (2, 10)]);
        let already = HashSet::from([(7, 2)]);
        let buys = vec![buy(7, 1, 1), buy(7, 1, 1), buy(7, 2, 1), buy(8, 1, 1)];
        let out = outcomes(allocate(&buys, &mut stock, &already));
        use Outcome::*;
        assert_eq!(
            out,
            vec![Confirmed, RejectedDuplicate, RejectedDuplicate, Confirmed]
        );
        assert_eq!((stock[&1].stock, stock[&2].stock), (8, 10));
    }

    #[test]
    fn unknown_items_and_bad_quantities_are_invalid() {
        let mut stock = sales(&[(1, 10)]);
        let out = allocate(
            &[
                buy(1, 99, 1),
                buy(1, 1, 0),
                buy(1, 1, MAX_QTY + 1),
                // The largest quantity the API admits is valid (mutation testing's boundary).
                buy(2, 1, MAX_QTY),
            ],
            &mut stock,
            &HashSet::new(),
        );
        let why: Vec<_> = out.iter().map(|d| d.invalid).collect();
        assert_eq!(
            why,
            [
                Some(Invalid::UnknownItem),
                Some(Invalid::Quantity),
                Some(Invalid::Quantity),
                None
            ]
        );
        assert!(out[..3]
            .iter()
            .all(|d| d.outcome == Outcome::RejectedInvalid));
        assert_eq!(out[3].outcome, Outcome::Confirmed);
        assert_eq!(stock[&1].stock, 10 - MAX_QTY as i32);
    }

    /// Issue 34's forged buys: a time outside the sale's window, and a token-required item
    /// without the API's signature, are invalid; the same buys as the API makes them go through.
    #[test]
    fn outside_the_window_or_unsigned_for_a_token_item_is_invalid() {
        let mut s = HashMap::from([(
            1,
            Sale {
                stock: 10,
                opens_at_ms: Some(1_000),
                closes_at_ms: Some(2_000),
                require_token: true,
            },
        )]);
        let at = |t: i64, signed: bool| Buy {
            accepted_at_ms: t,
            signed,
            ..buy(t, 1, 1)
        };
        let out = allocate(
            &[
                at(999, true),
                at(2_000, true),
                at(1_500, false),
                at(1_500, true),
                // The opening millisecond itself is inside the window.
                at(1_000, true),
            ],
            &mut s,
            &HashSet::new(),
        );
        let why: Vec<_> = out.iter().map(|d| d.invalid).collect();
        assert_eq!(
            why,
            [
                Some(Invalid::OutsideSaleWindow),
                Some(Invalid::OutsideSaleWindow),
                Some(Invalid::Unsigned),
                None,
                None
            ]
        );
        assert_eq!(out[3].outcome, Outcome::Confirmed);
        assert_eq!(out[4].outcome, Outcome::Confirmed);
        assert_eq!(s[&1].stock, 8);
    }

    /// The reasons are the `reason` label of `order_worker_rejected_invalid_total`, as the
    /// README and the dashboards name them.
    #[test]
    fn invalid_reasons_have_their_documented_labels() {
        let labels: Vec<&str> = Invalid::ALL.iter().map(|i| i.as_str()).collect();
        assert_eq!(
            labels,
            [
                "unknown_item",
                "quantity",
                "outside_sale_window",
                "unsigned"
            ]
        );
    }
}
