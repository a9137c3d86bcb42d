//! Stock allocation for a batch of buys, in queue order, in memory. Pure, so the rules are
//! tested without a database; [`super::store`] feeds it the locked stock and the confirmed
//! (user, item) pairs.
//!
//! Rules, first match wins, buys taken in the order they were queued:
//! 1. unknown item, or a quantity outside 1..=MAX_QTY: `rejected_invalid`;
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

/// Decides every buy; `stock` (item -> units left) is updated in place.
pub fn allocate(
    buys: &[Buy],
    stock: &mut HashMap<i64, i32>,
    confirmed: &HashSet<(i64, i64)>,
) -> Vec<Outcome> {
    let mut confirmed_now: HashSet<(i64, i64)> = HashSet::new();
    buys.iter()
        .map(|b| {
            let Some(left) = stock.get_mut(&b.item_id) else {
                return Outcome::RejectedInvalid;
            };
            if b.qty == 0 || b.qty > MAX_QTY {
                return Outcome::RejectedInvalid;
            }
            let key = (b.user_id, b.item_id);
            if confirmed.contains(&key) || confirmed_now.contains(&key) {
                return Outcome::RejectedDuplicate;
            }
            let qty = b.qty as i32;
            if *left >= qty {
                *left -= qty;
                confirmed_now.insert(key);
                Outcome::Confirmed
            } else {
                Outcome::RejectedSoldOut
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
        }
    }

    #[test]
    fn first_come_first_served_without_overselling() {
        let mut stock = HashMap::from([(1, 3)]);
        let buys = vec![buy(1, 1, 2), buy(2, 1, 2), buy(3, 1, 1), buy(4, 1, 1)];
        let out = allocate(&buys, &mut stock, &HashSet::new());
        use Outcome::*;
        assert_eq!(
            out,
            vec![Confirmed, RejectedSoldOut, Confirmed, RejectedSoldOut]
        );
        assert_eq!(stock[&1], 0);
    }

    #[test]
    fn one_confirmed_order_per_user_and_item() {
        let mut stock = HashMap::from([(1, 10), (2, 10)]);
        let already = HashSet::from([(7, 2)]);
        let buys = vec![buy(7, 1, 1), buy(7, 1, 1), buy(7, 2, 1), buy(8, 1, 1)];
        let out = allocate(&buys, &mut stock, &already);
        use Outcome::*;
        assert_eq!(
            out,
            vec![Confirmed, RejectedDuplicate, RejectedDuplicate, Confirmed]
        );
        assert_eq!((stock[&1], stock[&2]), (8, 10));
    }

    #[test]
    fn unknown_items_and_bad_quantities_are_invalid() {
        let mut stock = HashMap::from([(1, 10)]);
        let out = allocate(
            &[buy(1, 99, 1), buy(1, 1, 0), buy(1, 1, MAX_QTY + 1)],
            &mut stock,
            &HashSet::new(),
        );
        assert!(out.iter().all(|o| *o == Outcome::RejectedInvalid));
        assert_eq!(stock[&1], 10);
    }
}
