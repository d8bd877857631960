//! The closed vocabularies of the catalog: categories, severities and scopes.
//!
//! This file is shared verbatim by `build.rs` (through `#[path]`), so the
//! words the CSV files may use and the enum variants the generated map names
//! come from one list. It must therefore depend on nothing but `core`.

/// Declares a closed vocabulary: an enum whose variants each have one
/// lower-case spelling, used in catalog/ and in every output format.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            ///
            #[doc = concat!("```\nuse cts_audit::catalog::", stringify!($name), ";\nassert!(!", stringify!($name), "::ALL.is_empty());\n```")]
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The spelling used in catalog/ and in output.
            ///
            #[doc = concat!("```\nuse cts_audit::catalog::", stringify!($name), ";\nfor value in ", stringify!($name), "::ALL {\n    assert_eq!(value.as_str(), value.as_str().to_lowercase());\n}\n```")]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses the spelling used in catalog/ and on the command line
            /// (ASCII case is ignored).
            ///
            #[doc = concat!("```\nuse cts_audit::catalog::", stringify!($name), ";\nfor value in ", stringify!($name), "::ALL {\n    assert_eq!(", stringify!($name), "::parse(&value.as_str().to_uppercase()), Some(*value));\n}\nassert_eq!(", stringify!($name), "::parse(\"no such word\"), None);\n```")]
            pub fn parse(text: &str) -> Option<$name> {
                $(if text.eq_ignore_ascii_case($text) {
                    return Some($name::$variant);
                })+
                None
            }
        }
    };
}

vocabulary! {
    /// How much an operation matters to someone auditing money. Ordered:
    /// `None < Info < Low < Medium < High < Critical`.
    Severity {
        /// A plain read: never flagged.
        None = "none",
        /// Worth keeping in the record, not worth a look.
        Info = "info",
        /// Flagged by default: financial data left the console, or a minor change.
        Low = "low",
        /// Money moved or a financial safeguard changed.
        Medium = "medium",
        /// Payment methods, withdrawals, destruction of paid resources.
        High = "high",
        /// Deleting the audit trail itself, deregistering the account.
        Critical = "critical",
    }
}

vocabulary! {
    /// What kind of action an operation is.
    Category {
        /// Querying bills, balances, orders or settings.
        Read = "read",
        /// Exporting or downloading financial data.
        Export = "export",
        /// Paying for an order.
        Payment = "payment",
        /// Adding, changing or removing a payment card.
        PaymentMethod = "payment_method",
        /// Top-ups, withdrawals and transfers of funds or coupons between accounts.
        Funds = "funds",
        /// Creating, changing or cancelling orders.
        Order = "order",
        /// Renewal, auto-renewal, expiry policy, billing mode and deduction dates.
        Renewal = "renewal",
        /// Unsubscribing, releasing, freezing or deleting paid resources.
        Destruction = "destruction",
        /// Balance alerts, deduction settings, budgets and bill subscriptions.
        FinancialSettings = "financial_settings",
        /// Invoices and invoice templates.
        Invoice = "invoice",
        /// Accounts, member accounts and identity.
        Account = "account",
        /// CTS trackers and key event notifications: the audit trail itself.
        AuditTrail = "audit_trail",
    }
}

vocabulary! {
    /// Which family of services a catalog entry belongs to.
    Scope {
        /// Billing Center, customer-operation APIs, Cost, Enterprise and Account Center.
        Billing = "billing",
        /// CTS's own operations, which guard the audit trail.
        Audit = "audit",
    }
}

vocabulary! {
    /// What an operation does to its resource, as OCSF API Activity counts it.
    Activity {
        /// Creates something: a card, a payment, an order, a top-up.
        Create = "create",
        /// Reads or exports without changing anything.
        Read = "read",
        /// Changes a setting or a resource.
        Update = "update",
        /// Deletes, unsubscribes, releases or freezes.
        Delete = "delete",
    }
}

/// A verdict starts at `none`, before any rule fires.
impl Default for Severity {
    fn default() -> Self {
        Severity::None
    }
}
