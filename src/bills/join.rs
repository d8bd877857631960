//! The join: each charge of the bills goes to the billing action of a trace
//! that caused it, by order id, or else by resource id and a bill type that
//! fits the action.
//!
//! A charge goes to at most one action: the nearest compatible action
//! before it within the window (by order id, the nearest after when none is
//! before, since a bill's trade time can come a moment before the trace's).
//! An action's [`Cost`] sums its charges per currency.
//!
//! ```
//! use cts_audit::bills::join::{assign, Action, ActionAt, BillAction};
//! use cts_audit::bills::{read_bills, ReadOptions};
//! let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
//! let unsubscribe = ActionAt {
//!     seq: 7,
//!     time_ms: Some(1_718_778_171_170), // 2024-06-19T06:22:51.170Z
//!     bill: BillAction {
//!         action: Action::Unsubscribe,
//!         trace_name: "unsubscribeResource".into(),
//!         trace_id: None,
//!         ids: vec![("r".into(), "7285ea5d-f15c-4d9c-9e4e-37d37023f2f4".into())],
//!     },
//! };
//! let joined = assign(&bills.records, &[unsubscribe], 48 * 3_600_000);
//! let cost = &joined.costs[&7];
//! assert_eq!((cost.amount.to_string(), cost.matched), ("-1100.00000000".to_owned(), Some("resource")));
//! ```

use super::record::{BillRecord, Charge};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A billing action whose money the bills show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// An order paid.
    PayOrder,
    /// A new purchase.
    NewPurchase,
    /// A renewal.
    Renew,
    /// An unsubscription.
    Unsubscribe,
    /// Auto-renewal turned on.
    AutoRenewOn,
    /// Auto-renewal turned off (no charge follows).
    AutoRenewOff,
    /// Pay-per-use changed to yearly/monthly.
    BillingModeChange,
    /// Yearly/monthly changed to pay-per-use.
    PeriodToOnDemand,
}

/// The operations (trace names) of each action. One table: the scan, the
/// rule and the docs read it.
pub const ACTIONS: &[(&str, Action)] = &[
    ("payOrder", Action::PayOrder),
    ("payCustomerOrderV3", Action::PayOrder),
    ("orderPayment", Action::PayOrder),
    ("orderPaymentV2", Action::PayOrder),
    ("ipsPayByBindCard", Action::PayOrder),
    ("payment", Action::PayOrder),
    ("generatedResourcePackage", Action::NewPurchase),
    ("renewResource", Action::Renew),
    ("renewResources", Action::Renew),
    ("batchRenewOrdersV2", Action::Renew),
    ("unsubscribeResource", Action::Unsubscribe),
    ("unsubscribeResources", Action::Unsubscribe),
    ("unsubscribeCloudResource", Action::Unsubscribe),
    ("resourcePackageUnsubscription", Action::Unsubscribe),
    ("openAutoRenew", Action::AutoRenewOn),
    ("setResourcesAutorenew", Action::AutoRenewOn),
    ("cancelAutoRenew", Action::AutoRenewOff),
    ("cancelResourcesAutoRenew", Action::AutoRenewOff),
    ("changeBillingMode", Action::BillingModeChange),
    ("toPeriod", Action::BillingModeChange),
    ("genToPeriodOrder", Action::BillingModeChange),
    ("genToPeriodOrderV2", Action::BillingModeChange),
    ("updatePeriodToOnDemand", Action::PeriodToOnDemand),
    ("expireToDemand", Action::PeriodToOnDemand),
    ("periodToOnDemandInstantly", Action::PeriodToOnDemand),
];

impl Action {
    /// The action an operation is, if it is one.
    ///
    /// ```
    /// use cts_audit::bills::join::Action;
    /// assert_eq!(Action::of("renewResources"), Some(Action::Renew));
    /// assert_eq!(Action::of("bindCard"), None);
    /// ```
    pub fn of(trace_name: &str) -> Option<Action> {
        ACTIONS
            .iter()
            .find(|(name, _)| *name == trace_name)
            .map(|(_, action)| *action)
    }

    /// Its name in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::PayOrder => "pay_order",
            Action::NewPurchase => "new_purchase",
            Action::Renew => "renew",
            Action::Unsubscribe => "unsubscribe",
            Action::AutoRenewOn => "auto_renew_on",
            Action::AutoRenewOff => "auto_renew_off",
            Action::BillingModeChange => "billing_mode_change",
            Action::PeriodToOnDemand => "period_to_on_demand",
        }
    }

    /// How a reason names it: "unsubscribe" (refunded 12,340.00 CNY).
    pub fn words(self) -> String {
        self.as_str().replace('_', " ")
    }

    /// Whether a charge of this kind, found by resource id alone, can be
    /// this action's (a renewal takes renewal charges, an unsubscription
    /// refunds).
    ///
    /// ```
    /// use cts_audit::bills::{join::Action, Charge};
    /// assert!(Action::Unsubscribe.takes(Charge::Refund));
    /// assert!(!Action::Unsubscribe.takes(Charge::Renewal));
    /// ```
    pub fn takes(self, charge: Charge) -> bool {
        use Charge::*;
        match self {
            Action::PayOrder => matches!(charge, NewPurchase | Renewal | Change | Purchase),
            Action::NewPurchase => matches!(charge, NewPurchase | Purchase),
            Action::Renew => matches!(charge, Renewal),
            Action::Unsubscribe => matches!(charge, Refund | Adjustment),
            Action::AutoRenewOn => matches!(charge, AutoRenewal),
            Action::AutoRenewOff => false,
            // bill_type of the new yearly/monthly order is undocumented
            // (reference, unknown 3): a new purchase or a change.
            Action::BillingModeChange => matches!(charge, NewPurchase | Change | Purchase),
            Action::PeriodToOnDemand => matches!(charge, ToOnDemandRefund | ChangeRefund),
        }
    }
}

/// One action as the join sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionAt {
    /// The scan's number for it (input order).
    pub seq: u64,
    /// When it happened (epoch milliseconds, UTC); `None` when the trace
    /// gave no readable time (it takes no charge).
    pub time_ms: Option<i64>,
    /// What it was, and the ids it carries.
    pub bill: BillAction,
}

/// The rules of the join that are not in the bills.
#[derive(Debug, Clone)]
pub struct CostBasis {
    /// The bill records.
    pub records: Vec<BillRecord>,
    /// How long after an action its charges may come.
    pub window_ms: i64,
}

/// What an action cost, per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// The sum of its charges in `currency`, every decimal kept; negative
    /// for money back.
    #[serde(serialize_with = "as_text")]
    pub amount: Decimal,
    /// ISO 4217 code; none when it has no charge.
    pub currency: Option<String>,
    /// How many charges.
    pub charges: u64,
    /// How the charges were found: `order` (an order id the trace carries)
    /// or `resource` (resource id and bill type); none without charges.
    #[serde(rename = "match")]
    pub matched: Option<&'static str>,
    /// The charges' bill ids.
    pub bill_ids: Vec<String>,
    /// Charges in other currencies, summed apart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_currencies: Vec<CurrencyAmount>,
    /// The action it is the cost of (its rule's reason names it).
    #[serde(skip)]
    pub action: Option<Action>,
}

/// An amount in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrencyAmount {
    /// The sum.
    #[serde(serialize_with = "as_text")]
    pub amount: Decimal,
    /// ISO 4217 code.
    pub currency: String,
    /// How many charges.
    pub charges: u64,
}

pub(crate) fn as_text<S: Serializer>(amount: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(amount)
}

impl Cost {
    /// Each currency's amount: the first, then the others.
    pub fn amounts(&self) -> impl Iterator<Item = (Decimal, &str)> {
        self.currency
            .as_deref()
            .map(|c| (self.amount, c))
            .into_iter()
            .chain(
                self.other_currencies
                    .iter()
                    .map(|o| (o.amount, o.currency.as_str())),
            )
    }

    /// `-1234.56 CNY` (and `; 12.00 USD` for each other currency); `0`
    /// without charges.
    pub fn display(&self) -> String {
        let parts: Vec<String> = self.amounts().map(|(a, c)| format!("{a} {c}")).collect();
        if parts.is_empty() {
            "0".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The join's counts: every action and every charge is in exactly one
/// place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JoinStats {
    /// Billing actions seen (after dedup).
    pub actions: u64,
    /// Actions given at least one charge.
    pub actions_with_charges: u64,
    /// Actions given none.
    pub actions_without_charges: u64,
    /// Bill records read.
    pub charges: u64,
    /// Charges given to an action by order id.
    pub charges_by_order: u64,
    /// Charges given to an action by resource id.
    pub charges_by_resource: u64,
    /// Charges no action took.
    pub charges_unmatched: u64,
    /// Account changes of an order that resource-level records already
    /// bill: not added again.
    pub charges_superseded: u64,
    /// Billing actions past the memory kept for the join
    /// ([`MAX_ACTION_BYTES`]): flagged as ever, but given no cost.
    pub actions_not_joined: u64,
}

/// The most memory the ids of the billing actions kept for the join may
/// take: a trail of hostile traces cannot grow the scan past it.
pub const MAX_ACTION_BYTES: usize = 256 << 20;

/// What [`assign`] decided. Serialized as its counts.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Joined {
    /// Each action's cost, by its `seq`; actions without charges have one
    /// with no charges.
    #[serde(skip)]
    pub costs: HashMap<u64, Cost>,
    /// The actions without charges.
    #[serde(skip)]
    pub actions_without_charges: Vec<ActionAt>,
    /// Indexes (into the bill records) of the charges no action took.
    #[serde(skip)]
    pub charges_unmatched: Vec<usize>,
    /// The counts.
    #[serde(flatten)]
    pub stats: JoinStats,
}

/// Gives each charge to at most one action, and sums each action's.
pub fn assign(records: &[BillRecord], actions: &[ActionAt], window_ms: i64) -> Joined {
    let mut by_order: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_resource: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, action) in actions.iter().enumerate() {
        for (kind, id) in &action.bill.ids {
            // An id the trace gives as its resource may be an order id
            // (`payOrder`'s resource is the order): every id is looked up
            // as an order; only resource ids as resources.
            by_order.entry(id).or_default().push(index);
            if kind == "r" {
                by_resource.entry(id).or_default().push(index);
            }
        }
    }
    // Orders billed resource by resource: their account changes are the
    // same money again.
    let billed_orders: HashSet<&str> = records
        .iter()
        .filter(|r| r.kind.is_resource_level())
        .flat_map(|r| r.trade_id.iter().chain(&r.orders))
        .map(String::as_str)
        .collect();
    let mut stats = JoinStats {
        actions: actions.len() as u64,
        charges: records.len() as u64,
        ..JoinStats::default()
    };
    let mut taken: Vec<Vec<(usize, &'static str)>> = vec![Vec::new(); actions.len()];
    let mut charges_unmatched = Vec::new();
    for (index, record) in records.iter().enumerate() {
        if !record.kind.is_resource_level()
            && record
                .trade_id
                .as_deref()
                .is_some_and(|t| billed_orders.contains(t))
        {
            stats.charges_superseded += 1;
            continue;
        }
        let Some(time) = record.time else {
            stats.charges_unmatched += 1;
            charges_unmatched.push(index);
            continue;
        };
        let at = |a: &ActionAt| a.time_ms.unwrap_or(i64::MIN);
        let in_window = |a: &ActionAt| {
            a.time_ms.is_some()
                && at(a).saturating_add(window_ms) >= time.start_ms
                && at(a).saturating_sub(window_ms) < time.end_ms
        };
        let before = |a: &ActionAt| at(a) < time.end_ms;
        let order_ids = record.trade_id.iter().chain(&record.orders);
        let by_order_candidates: Vec<usize> = order_ids
            .filter_map(|id| by_order.get(id.as_str()))
            .flatten()
            .copied()
            .filter(|&i| in_window(&actions[i]))
            .collect();
        let nearest_before = |candidates: &[usize]| {
            candidates
                .iter()
                .copied()
                .filter(|&i| before(&actions[i]))
                .max_by_key(|&i| (at(&actions[i]), actions[i].seq))
        };
        let chosen = if !by_order_candidates.is_empty() {
            nearest_before(&by_order_candidates)
                .or_else(|| {
                    by_order_candidates
                        .iter()
                        .copied()
                        .min_by_key(|&i| (at(&actions[i]), actions[i].seq))
                })
                .map(|i| (i, "order"))
        } else {
            let resource_ids = record.resource_id.iter().chain(&record.related_resources);
            let candidates: Vec<usize> = resource_ids
                .filter_map(|id| by_resource.get(id.as_str()))
                .flatten()
                .copied()
                .filter(|&i| {
                    let a = &actions[i];
                    a.bill.action.takes(record.charge)
                        && a.time_ms.is_some()
                        && before(a)
                        && at(a).saturating_add(window_ms) >= time.start_ms
                })
                .collect();
            nearest_before(&candidates).map(|i| (i, "resource"))
        };
        match chosen {
            Some((action, how)) => {
                if how == "order" {
                    stats.charges_by_order += 1;
                } else {
                    stats.charges_by_resource += 1;
                }
                taken[action].push((index, how));
            }
            None => {
                stats.charges_unmatched += 1;
                charges_unmatched.push(index);
            }
        }
    }
    let mut joined = Joined {
        charges_unmatched,
        ..Joined::default()
    };
    for (action, charges) in actions.iter().zip(taken) {
        if charges.is_empty() {
            stats.actions_without_charges += 1;
            joined.actions_without_charges.push(action.clone());
        } else {
            stats.actions_with_charges += 1;
        }
        let mut cost = cost_of(records, &charges);
        cost.action = Some(action.bill.action);
        joined.costs.insert(action.seq, cost);
    }
    joined.stats = stats;
    joined
}

/// Sums the charges per currency: the currency with the most charges
/// first (then by name).
fn cost_of(records: &[BillRecord], charges: &[(usize, &'static str)]) -> Cost {
    let mut sums: BTreeMap<&str, (Decimal, u64)> = BTreeMap::new();
    for &(index, _) in charges {
        let r = &records[index];
        let sum = sums.entry(&r.currency).or_default();
        sum.0 += r.billed;
        sum.1 += 1;
    }
    let mut sums: Vec<(&str, (Decimal, u64))> = sums.into_iter().collect();
    sums.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
    let mut sums = sums.into_iter();
    let first = sums.next();
    Cost {
        amount: first.map_or(Decimal::ZERO, |(_, (a, _))| a),
        currency: first.map(|(c, _)| c.to_owned()),
        charges: charges.len() as u64,
        matched: if charges.iter().any(|(_, how)| *how == "order") {
            Some("order")
        } else {
            charges.first().map(|(_, how)| *how)
        },
        bill_ids: charges
            .iter()
            .map(|&(i, _)| records[i].id.clone())
            .collect(),
        other_currencies: sums
            .map(|(currency, (amount, charges))| CurrencyAmount {
                amount,
                currency: currency.to_owned(),
                charges,
            })
            .collect(),
        action: None,
    }
}

/// An amount with thousands grouped and at least two decimals, every
/// decimal it has kept: `12,340.00`, `0.4125`.
///
/// ```
/// use cts_audit::bills::{join::grouped, parse_money};
/// assert_eq!(grouped(parse_money("12340.00000000").unwrap()), "12,340.00");
/// assert_eq!(grouped(parse_money("-0.4125").unwrap()), "-0.4125");
/// ```
pub fn grouped(amount: Decimal) -> String {
    let mut amount = amount.normalize();
    if amount.scale() < 2 {
        amount.rescale(2);
    }
    let text = amount.abs().to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if amount.is_sign_negative() { "-" } else { "" };
    format!("{sign}{grouped}.{fraction}")
}

/// The ids a billing action's trace carries: its `resource_id`, and in its
/// request and response (a JSON object or a JSON string of one) every
/// `order_id`/`order_ids` and `resource_id`/`resource_ids` (any case,
/// camelCase too), at any depth. At most [`MAX_IDS`] ids of at most 128
/// bytes.
///
/// ```
/// use cts_audit::bills::join::action_ids;
/// let request = r#""{\"resource_ids\":[\"r-1\",\"r-2\"],\"period_num\":1}""#;
/// let response = r#"{"order_ids":["CS001"]}"#;
/// let ids = action_ids(Some("r-1"), Some(request), Some(response));
/// assert_eq!(ids, [("r".into(), "r-1".into()), ("r".into(), "r-2".into()), ("o".into(), "CS001".into())]);
/// ```
pub fn action_ids(
    resource_id: Option<&str>,
    request: Option<&str>,
    response: Option<&str>,
) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = Vec::new();
    let mut add = |kind: &str, id: &str| {
        let id = id.trim();
        if !id.is_empty()
            && id != "-"
            && id.len() <= 128
            && !id.contains(char::is_control)
            && ids.len() < MAX_IDS
            && !ids.iter().any(|(_, seen)| seen == id)
        {
            ids.push((kind.to_owned(), id.to_owned()));
        }
    };
    if let Some(id) = resource_id {
        add("r", id);
    }
    for raw in [request, response].into_iter().flatten() {
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(raw) else {
            continue;
        };
        if let serde_json::Value::String(inner) = &value {
            match serde_json::from_str(inner) {
                Ok(parsed) => value = parsed,
                Err(_) => continue,
            }
        }
        walk(&value, None, &mut add);
    }
    ids
}

/// A billing action and the ids its trace carries: what a worker finds in
/// a trace, and the join reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillAction {
    /// What it is.
    pub action: Action,
    /// The operation (`trace_name`).
    pub trace_name: String,
    /// The trace's id.
    pub trace_id: Option<String>,
    /// `("o", order id)` and `("r", resource id)` pairs ([`action_ids`]).
    pub ids: Vec<(String, String)>,
}

impl BillAction {
    /// The action a trace records, if its operation is one, with its ids.
    ///
    /// ```
    /// use cts_audit::bills::join::{Action, BillAction};
    /// use cts_audit::trace::Trace;
    /// let trace = Trace::from_str(r#"{"trace_name":"renewResources","resource_id":"",
    ///   "request":"{\"resource_ids\":[\"r-1\"]}","response":{"order_ids":["CS1"]}}"#).unwrap();
    /// let found = BillAction::of(&trace).unwrap();
    /// assert_eq!(found.action, Action::Renew);
    /// assert_eq!(BillAction::decode(&found.encode()), Some(found));
    /// ```
    pub fn of(trace: &crate::trace::Trace<'_>) -> Option<BillAction> {
        let trace_name = trace.trace_name.as_deref()?;
        let action = Action::of(trace_name)?;
        let ids = action_ids(
            trace.resource_id.as_deref(),
            trace.request.map(|r| r.get()),
            trace.response.map(|r| r.get()),
        );
        Some(BillAction {
            action,
            trace_name: trace_name.to_owned(),
            trace_id: trace
                .trace_id
                .as_deref()
                .filter(|t| !t.contains(char::is_control))
                .map(str::to_owned),
            ids,
        })
    }

    /// Text: `ACTION TAB TRACE_NAME TAB TRACE_ID`, then `KIND TAB ID` lines.
    pub fn encode(&self) -> String {
        let name: String = self
            .trace_name
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let mut text = format!(
            "{}\t{name}\t{}",
            self.action.as_str(),
            self.trace_id.as_deref().unwrap_or_default()
        );
        for (kind, id) in &self.ids {
            text.push('\n');
            text.push_str(kind);
            text.push('\t');
            text.push_str(id);
        }
        text
    }

    /// What [`BillAction::encode`] wrote.
    pub fn decode(text: &str) -> Option<BillAction> {
        let mut lines = text.split('\n');
        let mut head = lines.next()?.split('\t');
        let (name, trace_name, trace_id) = (head.next()?, head.next()?, head.next()?);
        let action = ACTIONS
            .iter()
            .map(|(_, a)| *a)
            .find(|a| a.as_str() == name)?;
        let ids = lines
            .filter_map(|line| line.split_once('\t'))
            .map(|(kind, id)| (kind.to_owned(), id.to_owned()))
            .collect();
        Some(BillAction {
            action,
            trace_name: trace_name.to_owned(),
            trace_id: (!trace_id.is_empty()).then(|| trace_id.to_owned()),
            ids,
        })
    }
}

/// The most ids taken from one trace (the BSS APIs take at most 100
/// resources a call).
pub const MAX_IDS: usize = 200;

fn walk(value: &serde_json::Value, key: Option<&str>, add: &mut dyn FnMut(&str, &str)) {
    let kind = key.and_then(|k| {
        let k: String = k
            .chars()
            .filter(|c| *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        match k.as_str() {
            "orderid" | "orderids" | "tradeid" => Some("o"),
            "resourceid" | "resourceids" | "resinstanceid" => Some("r"),
            _ => None,
        }
    });
    match value {
        serde_json::Value::String(s) => {
            if let Some(kind) = kind {
                add(kind, s);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                walk(item, key, add);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                walk(v, Some(k), add);
            }
        }
        _ => {}
    }
}
