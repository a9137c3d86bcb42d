//! Kafka's authorization model: ACLs of (principal, host, operation, allow/deny) on resource
//! patterns (a topic, group, the cluster or a transactional id; a literal name, `*`, or a
//! prefix), checked the way Kafka's `StandardAuthorizer` checks them:
//!
//! 1. a super user (`--super-users`, and every user of role `admin`) may do everything;
//! 2. a DENY ACL matching the principal (or `User:*`), the host (or `*`) and the operation (or
//!    `ALL`) refuses;
//! 3. an ALLOW ACL matching the same way allows, where READ, WRITE, DELETE and ALTER each imply
//!    DESCRIBE, and ALTER_CONFIGS implies DESCRIBE_CONFIGS;
//! 4. with no ACL at all on the resource, `--allow-everyone-if-no-acl-found` decides (default:
//!    refuse, as Kafka's `allow.everyone.if.no.acl.found=false`).
//!
//! The authorizer runs when SASL users are configured; without users every client is trusted,
//! as a Kafka broker without an authorizer trusts them. ACLs are stored in the data directory
//! (`store`) and managed with CreateAcls / DescribeAcls / DeleteAcls (`kafka-acls.sh`, the
//! AdminClient), or given at start with `--acl`.

mod store;

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use store::{AclStore, AclStoreError};

/// Kafka's resource types (wire codes of `ResourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

/// How an ACL's resource name matches (wire codes of `PatternType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// The name itself, or every name when it is `*`.
    Literal,
    /// Every name starting with it.
    Prefixed,
}

/// Kafka's operations (wire codes of `AclOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    Deny,
    Allow,
}

/// The name of the one cluster resource, as Kafka names it.
pub const CLUSTER: &str = "kafka-cluster";

/// One ACL: who may (or may not) do what, from where, on which resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acl {
    pub resource_type: ResourceType,
    pub pattern_type: PatternType,
    pub name: String,
    /// `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// A client IP address, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Why an ACL or filter from a client or a flag cannot be used; the message is the client's.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

macro_rules! wire_codes {
    ($ty:ident { $($variant:ident = $code:literal, $name:literal;)* }) => {
        impl $ty {
            pub fn code(self) -> i8 {
                match self { $($ty::$variant => $code,)* }
            }
            /// `None` for a code that is not a concrete value (UNKNOWN, ANY, MATCH, ...).
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($ty::$variant),)* _ => None }
            }
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name,)* }
            }
        }
        impl FromStr for $ty {
            type Err = InvalidAcl;
            /// Kafka's names, case and `_`/`-` insensitive (`Read`, `DESCRIBE_CONFIGS`,
            /// `describe-configs`).
            fn from_str(s: &str) -> Result<Self, InvalidAcl> {
                let norm = |x: &str| x.to_ascii_uppercase().replace('-', "_");
                let want = norm(s.trim());
                [$($ty::$variant,)*]
                    .into_iter()
                    .find(|v| norm(v.name()) == want)
                    .ok_or_else(|| InvalidAcl(format!(
                        "unknown {} {s:?} (known: {})",
                        stringify!($ty),
                        [$($name,)*].join(", ")
                    )))
            }
        }
    };
}

wire_codes!(ResourceType {
    Topic = 2, "TOPIC";
    Group = 3, "GROUP";
    Cluster = 4, "CLUSTER";
    TransactionalId = 5, "TRANSACTIONAL_ID";
    DelegationToken = 6, "DELEGATION_TOKEN";
    User = 7, "USER";
});
wire_codes!(PatternType {
    Literal = 3, "LITERAL";
    Prefixed = 4, "PREFIXED";
});
wire_codes!(Operation {
    All = 2, "ALL";
    Read = 3, "READ";
    Write = 4, "WRITE";
    Create = 5, "CREATE";
    Delete = 6, "DELETE";
    Alter = 7, "ALTER";
    Describe = 8, "DESCRIBE";
    ClusterAction = 9, "CLUSTER_ACTION";
    DescribeConfigs = 10, "DESCRIBE_CONFIGS";
    AlterConfigs = 11, "ALTER_CONFIGS";
    IdempotentWrite = 12, "IDEMPOTENT_WRITE";
    CreateTokens = 13, "CREATE_TOKENS";
    DescribeTokens = 14, "DESCRIBE_TOKENS";
});
wire_codes!(Permission {
    Deny = 2, "DENY";
    Allow = 3, "ALLOW";
});

/// Wire code of ANY in every ACL enum; MATCH (pattern types only) is 2.
pub const ANY: i8 = 1;
const MATCH: i8 = 2;

impl Acl {
    /// Checks what a client or a flag sent, as Kafka's CreateAcls does.
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        let bad = |m: String| Err(InvalidAcl(m));
        if self.name.is_empty() {
            return bad("the resource name is empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.name != CLUSTER {
            return bad(format!(
                "the cluster resource is named {CLUSTER}, not {:?}",
                self.name
            ));
        }
        if self.pattern_type == PatternType::Prefixed && self.name == "*" {
            return bad("a prefixed pattern cannot be *: use a literal *".into());
        }
        let Some((kind, name)) = self.principal.split_once(':') else {
            return bad(format!(
                "principal {:?} is not TYPE:NAME (User:alice, User:*)",
                self.principal
            ));
        };
        if kind != "User" || name.is_empty() {
            return bad(format!(
                "principal {:?}: only User:NAME principals exist here",
                self.principal
            ));
        }
        if self.host != "*" && self.host.parse::<std::net::IpAddr>().is_err() {
            return bad(format!("host {:?} is not an IP address or *", self.host));
        }
        Ok(())
    }

    /// Whether this ACL's pattern covers the resource `name` of type `rt`.
    pub fn covers(&self, rt: ResourceType, name: &str) -> bool {
        self.resource_type == rt
            && match self.pattern_type {
                PatternType::Literal => self.name == name || self.name == "*",
                PatternType::Prefixed => name.starts_with(&self.name),
            }
    }

    /// `--acl` syntax: `PRINCIPAL;PERMISSION;OPERATION;RESOURCE_TYPE;PATTERN_TYPE;NAME[;HOST]`,
    /// e.g. `User:orders-api;ALLOW;WRITE;TOPIC;LITERAL;seckill`. Several operations may be
    /// given, comma-separated, for one ACL each.
    pub fn parse_entry(entry: &str) -> Result<Vec<Acl>, InvalidAcl> {
        let f: Vec<&str> = entry.split(';').map(str::trim).collect();
        if !(6..=7).contains(&f.len()) {
            return Err(InvalidAcl(format!(
                "ACL {entry:?} is not PRINCIPAL;ALLOW|DENY;OPERATIONS;RESOURCE_TYPE;LITERAL|PREFIXED;NAME[;HOST]"
            )));
        }
        let mut out = Vec::new();
        for op in f[2].split(',') {
            let acl = Acl {
                principal: f[0].to_string(),
                permission: f[1].parse()?,
                operation: op.parse()?,
                resource_type: f[3].parse()?,
                pattern_type: f[4].parse()?,
                name: f[5].to_string(),
                host: f.get(6).unwrap_or(&"*").to_string(),
            };
            acl.validate()?;
            out.push(acl);
        }
        Ok(out)
    }
}

/// An ACLs file (`--acls-file`): one `--acl` entry per line; blank lines and `#` comments are
/// skipped. A bad line is named by its number.
pub fn parse_file(text: &str) -> Result<Vec<Acl>, InvalidAcl> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let acls =
            Acl::parse_entry(line).map_err(|e| InvalidAcl(format!("line {}: {}", i + 1, e.0)))?;
        out.extend(acls);
    }
    Ok(out)
}

/// Which ACLs a DescribeAcls or DeleteAcls filter selects (Kafka's `AclBindingFilter`): each
/// `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

/// The pattern part of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type, the name compared as is.
    Any,
    /// Every ACL that would apply to a resource of that name: the literal name, `*`, and every
    /// prefix of it.
    Match,
    Exactly(PatternType),
}

impl AclFilter {
    /// From the wire's codes; an unknown code (0, or out of range) is refused.
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, InvalidAcl> {
        fn any_or<T>(
            code: i8,
            f: fn(i8) -> Option<T>,
            what: &str,
        ) -> Result<Option<T>, InvalidAcl> {
            if code == ANY {
                return Ok(None);
            }
            f(code)
                .map(Some)
                .ok_or_else(|| InvalidAcl(format!("unknown {what} code {code}")))
        }
        let pattern = match pattern {
            ANY => PatternFilter::Any,
            MATCH => PatternFilter::Match,
            c => PatternFilter::Exactly(
                PatternType::from_code(c)
                    .ok_or_else(|| InvalidAcl(format!("unknown pattern type code {c}")))?,
            ),
        };
        Ok(AclFilter {
            resource_type: any_or(resource_type, ResourceType::from_code, "resource type")?,
            name: name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: any_or(operation, Operation::from_code, "operation")?,
            permission: any_or(permission, Permission::from_code, "permission")?,
        })
    }

    pub fn matches(&self, acl: &Acl) -> bool {
        let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        self.resource_type.is_none_or(|t| t == acl.resource_type)
            && eq(&self.principal, &acl.principal)
            && eq(&self.host, &acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
            && match self.pattern {
                PatternFilter::Any => eq(&self.name, &acl.name),
                PatternFilter::Exactly(p) => p == acl.pattern_type && eq(&self.name, &acl.name),
                PatternFilter::Match => match &self.name {
                    None => true,
                    Some(n) => acl.covers(acl.resource_type, n),
                },
            }
    }
}

/// Decides every request of an authenticated broker.
#[derive(Debug)]
pub struct Authorizer {
    acls: AclStore,
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
}

/// Who is asking, from where.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// `User:alice`, `User:ANONYMOUS`, `User:CN=...`.
    pub principal: &'a str,
    /// The client's IP address.
    pub host: &'a str,
}

impl Authorizer {
    /// Opens the stored ACLs of `data_dir` and adds `initial` ones (`--acl`) not yet stored.
    pub fn open(
        data_dir: &Path,
        super_users: HashSet<String>,
        allow_if_no_acl: bool,
        initial: &[Acl],
    ) -> Result<Authorizer, AclStoreError> {
        let acls = AclStore::open(data_dir)?;
        acls.create(initial)?;
        Ok(Authorizer {
            acls,
            super_users,
            allow_if_no_acl,
        })
    }

    pub fn acls(&self) -> &AclStore {
        &self.acls
    }

    /// May `caller` do `op` on the resource `name` of type `rt`?
    pub fn allows(&self, caller: Caller<'_>, op: Operation, rt: ResourceType, name: &str) -> bool {
        if self.super_users.contains(caller.principal) {
            return true;
        }
        self.acls.with(|acls| {
            let on_resource = || acls.iter().filter(|a| a.covers(rt, name));
            if on_resource().next().is_none() {
                return self.allow_if_no_acl;
            }
            let mine = || on_resource().filter(|a| a.applies_to(caller));
            !mine().any(|a| a.denies(op)) && mine().any(|a| a.allows(op))
        })
    }

    /// May `caller` do `op` on some resource of type `rt`: a super user, an ALLOW ACL for it
    /// (not cancelled by a DENY on the same pattern), or `allow_if_no_acl` with no ACL of that
    /// type at all.
    pub fn allows_some(&self, caller: Caller<'_>, op: Operation, rt: ResourceType) -> bool {
        if self.super_users.contains(caller.principal) {
            return true;
        }
        self.acls.with(|acls| {
            let of_type = || acls.iter().filter(|a| a.resource_type == rt);
            if of_type().next().is_none() {
                return self.allow_if_no_acl;
            }
            let mine = || of_type().filter(|a| a.applies_to(caller));
            mine().filter(|a| a.allows(op)).any(|allow| {
                !mine().any(|d| {
                    d.denies(op) && d.pattern_type == allow.pattern_type && d.name == allow.name
                })
            })
        })
    }
}

impl Acl {
    /// This ACL names `caller`'s principal (or `User:*`) and host (or `*`).
    fn applies_to(&self, caller: Caller<'_>) -> bool {
        (self.principal == caller.principal || self.principal == "User:*")
            && (self.host == "*" || self.host == caller.host)
    }

    /// A DENY of `op` (or of everything).
    fn denies(&self, op: Operation) -> bool {
        self.permission == Permission::Deny
            && (self.operation == op || self.operation == Operation::All)
    }

    /// An ALLOW that grants `op`.
    fn allows(&self, op: Operation) -> bool {
        self.permission == Permission::Allow && implies(self.operation, op)
    }
}

/// Whether an ACL granting `granted` grants `wanted` (Kafka's implication rules).
fn implies(granted: Operation, wanted: Operation) -> bool {
    use Operation::*;
    granted == All
        || granted == wanted
        || (wanted == Describe && matches!(granted, Read | Write | Delete | Alter))
        || (wanted == DescribeConfigs && granted == AlterConfigs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entry: &str) -> Acl {
        Acl::parse_entry(entry).unwrap().remove(0)
    }

    fn authorizer(dir: &Path, acls: &[&str]) -> Authorizer {
        let acls: Vec<Acl> = acls.iter().map(|a| acl(a)).collect();
        Authorizer::open(dir, HashSet::from(["User:root".to_string()]), false, &acls).unwrap()
    }

    fn alice() -> Caller<'static> {
        Caller {
            principal: "User:alice",
            host: "10.0.0.1",
        }
    }

    #[test]
    fn kafkas_rules_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = authorizer(
            dir.path(),
            &[
                "User:alice;ALLOW;READ;TOPIC;PREFIXED;orders-",
                "User:alice;DENY;READ;TOPIC;LITERAL;orders-secret",
                "User:*;ALLOW;WRITE;TOPIC;LITERAL;public",
                "User:alice;ALLOW;ALL;GROUP;LITERAL;g;10.0.0.2",
            ],
        );
        use Operation::*;
        use ResourceType::*;
        assert!(a.allows(alice(), Read, Topic, "orders-1"));
        assert!(
            a.allows(alice(), Describe, Topic, "orders-1"),
            "READ implies DESCRIBE"
        );
        assert!(!a.allows(alice(), Write, Topic, "orders-1"));
        assert!(
            !a.allows(alice(), Read, Topic, "orders-secret"),
            "DENY wins"
        );
        assert!(
            a.allows(alice(), Write, Topic, "public"),
            "User:* covers alice"
        );
        assert!(!a.allows(alice(), Read, Group, "g"), "another host");
        assert!(
            !a.allows(alice(), Read, Topic, "unlisted"),
            "no ACL: refused by default"
        );
        let root = Caller {
            principal: "User:root",
            host: "1.2.3.4",
        };
        assert!(a.allows(root, Alter, Cluster, CLUSTER), "super user");
        let open = Authorizer::open(dir.path(), HashSet::new(), true, &[]).unwrap();
        assert!(open.allows(alice(), Read, Topic, "unlisted"));
        assert!(!open.allows(alice(), Read, Topic, "orders-secret"));
    }

    #[test]
    fn filters_match_as_kafka_does() {
        let prefixed = acl("User:a;ALLOW;READ;TOPIC;PREFIXED;orders-");
        let literal = acl("User:a;ALLOW;READ;TOPIC;LITERAL;orders-1");
        let f = |pattern: i8, name: Option<&str>| {
            AclFilter::from_wire(2, name, pattern, None, None, ANY, ANY).unwrap()
        };
        assert!(f(MATCH, Some("orders-1")).matches(&prefixed));
        assert!(f(MATCH, Some("orders-1")).matches(&literal));
        assert!(!f(ANY, Some("orders-1")).matches(&prefixed));
        assert!(f(ANY, Some("orders-1")).matches(&literal));
        assert!(f(4, None).matches(&prefixed) && !f(4, None).matches(&literal));
        assert!(AclFilter::from_wire(0, None, ANY, None, None, ANY, ANY).is_err());
    }

    #[test]
    fn an_acls_file_skips_comments_and_names_the_bad_line() {
        let acls = parse_file("# orders\n\nUser:a;ALLOW;READ,WRITE;TOPIC;LITERAL;t\n").unwrap();
        assert_eq!(acls.len(), 2);
        let e = parse_file("# x\nUser:a;ALLOW;READ;TOPIC;LITERAL;t\nbad\n").unwrap_err();
        assert!(e.0.starts_with("line 3:"), "{e:?}");
    }

    #[test]
    fn bad_acls_are_named() {
        let says = |e: &str, what: &str| {
            let err = Acl::parse_entry(e).unwrap_err().0;
            assert!(err.contains(what), "{err:?} does not say {what:?}");
        };
        says("User:a;ALLOW;READ;TOPIC;LITERAL", "is not PRINCIPAL");
        says("alice;ALLOW;READ;TOPIC;LITERAL;t", "TYPE:NAME");
        says("Group:a;ALLOW;READ;TOPIC;LITERAL;t", "only User:NAME");
        says("User:a;MAYBE;READ;TOPIC;LITERAL;t", "unknown Permission");
        says("User:a;ALLOW;FLY;TOPIC;LITERAL;t", "unknown Operation");
        says("User:a;ALLOW;READ;CLUSTER;LITERAL;c", "kafka-cluster");
        says("User:a;ALLOW;READ;TOPIC;PREFIXED;*", "literal *");
        says(
            "User:a;ALLOW;READ;TOPIC;LITERAL;t;host.example",
            "IP address",
        );
        assert_eq!(
            Acl::parse_entry("User:a;allow;read,describe-configs;topic;literal;t")
                .unwrap()
                .len(),
            2
        );
    }
}
