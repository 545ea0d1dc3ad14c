//! Shards: one replica's part of the objects when an operator runs as `count` replicas, for the API
//! server's sharded list and watch (Kubernetes 1.36, KEP-5866, `shardSelector`).
//!
//! The server hashes an object's uid (or namespace) with 64-bit FNV-1a and sends a replica only the
//! objects whose hash is in its ranges. [`Shard`] splits the hash space `[0, 2^64)` into `count`
//! contiguous, equal (to one unit) ranges and gives replica `index` the `index`-th, so the replicas
//! together cover every hash exactly once. Its [`Shard::selector`] goes into
//! `settings.watching.shard_selectors`, which passes it to every list and watch.

use std::fmt;

/// The end of the hash space, 2^64.
const SPACE: u128 = 1 << 64;

/// 64-bit FNV-1a, the hash the API server shards by.
///
/// ```
/// assert_eq!(kopf::shard_hash(b"foobar"), 0x8594_4171_f739_67e8);
/// ```
pub fn shard_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What the server hashes to place an object in a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShardField {
    /// `object.metadata.uid`: objects spread evenly, each on its own.
    #[default]
    Uid,
    /// `object.metadata.namespace`: whole namespaces stay together (cluster-scoped objects all hash
    /// the empty namespace, so they all land in one shard).
    Namespace,
}

impl ShardField {
    /// The field path in the selector (`object.metadata.uid`, `object.metadata.namespace`).
    pub fn path(self) -> &'static str {
        match self {
            Self::Uid => "object.metadata.uid",
            Self::Namespace => "object.metadata.namespace",
        }
    }
}

/// Why a [`Shard`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// `count` is zero.
    #[error("the replica count must be at least 1")]
    NoReplicas,
    /// `index` is not below `count`.
    #[error("replica index {index} is out of range for {count} replicas")]
    OutOfRange {
        /// The index.
        index: u64,
        /// The count.
        count: u64,
    },
    /// A variable the environment must set is unset.
    #[error("{0} is not set")]
    Unset(&'static str),
    /// A variable does not hold a number.
    #[error("{name}={value:?} is not a non-negative integer")]
    NotANumber {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// Neither `KOPF_SHARD_INDEX` nor a StatefulSet ordinal in the pod name.
    #[error(
        "KOPF_SHARD_INDEX is not set and neither POD_NAME nor HOSTNAME ends in a StatefulSet ordinal (-N)"
    )]
    NoIndex,
}

/// Replica `index` of `count`: the `index`-th of `count` equal ranges of the hash space.
///
/// ```
/// use kopf::{Shard, Settings};
/// let shard = Shard::new(1, 2)?;
/// assert_eq!(
///     shard.selector(),
///     "shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')"
/// );
/// let mut settings = Settings::default();
/// settings.watching.shard_selectors.insert_everything(shard.selector());
/// # Ok::<(), kopf::ShardError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u64,
    count: u64,
    field: ShardField,
}

/// The variable with the replica count.
pub const SHARD_COUNT_VAR: &str = "KOPF_SHARD_COUNT";
/// The variable with the replica index (optional in a StatefulSet).
pub const SHARD_INDEX_VAR: &str = "KOPF_SHARD_INDEX";

impl Shard {
    /// Replica `index` (from 0) of `count`, sharding by uid.
    ///
    /// # Errors
    /// [`ShardError::NoReplicas`] for a zero count, [`ShardError::OutOfRange`] unless `index < count`.
    pub fn new(index: u64, count: u64) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::NoReplicas);
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count, field: ShardField::Uid })
    }

    /// The same shard, hashing another field.
    #[must_use]
    pub fn by(mut self, field: ShardField) -> Self {
        self.field = field;
        self
    }

    /// The shard of this process, from the environment: the count from `KOPF_SHARD_COUNT`, the
    /// index from `KOPF_SHARD_INDEX` or else from the ordinal that ends a StatefulSet pod's name
    /// (`POD_NAME`, else `HOSTNAME`: `my-operator-2` is replica 2).
    ///
    /// # Errors
    /// As [`Shard::from_vars`].
    pub fn from_env() -> Result<Self, ShardError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Shard::from_env`] over any lookup of variables (a map in tests, a config file).
    ///
    /// ```
    /// let vars = std::collections::HashMap::from([("KOPF_SHARD_COUNT", "4"), ("HOSTNAME", "op-3")]);
    /// let shard = kopf::Shard::from_vars(|name| vars.get(name).map(|v| v.to_string()))?;
    /// assert_eq!((shard.index(), shard.count()), (3, 4));
    /// # Ok::<(), kopf::ShardError>(())
    /// ```
    ///
    /// # Errors
    /// [`ShardError::Unset`] without a count, [`ShardError::NotANumber`] for a count or index that
    /// is not a number, [`ShardError::NoIndex`] when no index can be found, and the errors of
    /// [`Shard::new`].
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ShardError> {
        let number = |name: &'static str, value: String| {
            value.trim().parse::<u64>().map_err(|_| ShardError::NotANumber { name, value })
        };
        let count = lookup(SHARD_COUNT_VAR).ok_or(ShardError::Unset(SHARD_COUNT_VAR))?;
        let count = number(SHARD_COUNT_VAR, count)?;
        let index = match lookup(SHARD_INDEX_VAR).filter(|v| !v.trim().is_empty()) {
            Some(index) => number(SHARD_INDEX_VAR, index)?,
            None => ["POD_NAME", "HOSTNAME"]
                .into_iter()
                .filter_map(&lookup)
                .find_map(|name| ordinal(&name))
                .ok_or(ShardError::NoIndex)?,
        };
        Self::new(index, count)
    }

    /// The replica's index.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The number of replicas.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The hashed field.
    pub fn field(&self) -> ShardField {
        self.field
    }

    /// The half-open range `[start, end)` of hashes this replica owns; `end` may be 2^64.
    pub fn range(&self) -> (u64, u128) {
        let bound = |i: u64| u128::from(i) * SPACE / u128::from(self.count);
        // `index < count`, so the start is below 2^64.
        let start = u64::try_from(bound(self.index)).unwrap_or(u64::MAX);
        (start, bound(self.index + 1))
    }

    /// Whether this replica owns an object whose hashed field (uid or namespace) has this value.
    pub fn owns(&self, value: &str) -> bool {
        let (start, end) = self.range();
        let hash = shard_hash(value.as_bytes());
        start <= hash && u128::from(hash) < end
    }

    /// The `shardSelector` of this replica, in the canonical form the API server echoes.
    pub fn selector(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Shard {
    /// The shard selector: `shardRange(<field>, '0x<16 hex digits>', '0x<16 or 17 hex digits>')`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = self.range();
        write!(f, "shardRange({}, '0x{start:016x}', '0x{end:016x}')", self.field.path())
    }
}

/// The ordinal at the end of a StatefulSet pod's name (`web-12` → 12).
fn ordinal(name: &str) -> Option<u64> {
    let (_, digits) = name.trim().rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        move |name| map.get(name).map(|v| (*v).to_owned())
    }

    #[test]
    fn four_replicas_get_the_quarters_of_the_space() {
        let selectors: Vec<String> = (0..4).map(|i| Shard::new(i, 4).unwrap().selector()).collect();
        assert_eq!(
            selectors,
            [
                "shardRange(object.metadata.uid, '0x0000000000000000', '0x4000000000000000')",
                "shardRange(object.metadata.uid, '0x4000000000000000', '0x8000000000000000')",
                "shardRange(object.metadata.uid, '0x8000000000000000', '0xc000000000000000')",
                "shardRange(object.metadata.uid, '0xc000000000000000', '0x10000000000000000')",
            ]
        );
        assert_eq!(
            Shard::new(0, 1).unwrap().by(ShardField::Namespace).selector(),
            "shardRange(object.metadata.namespace, '0x0000000000000000', '0x10000000000000000')"
        );
    }

    #[test]
    fn three_replicas_split_the_space_into_contiguous_ranges_one_unit_apart_in_size() {
        let ranges: Vec<(u64, u128)> = (0..3).map(|i| Shard::new(i, 3).unwrap().range()).collect();
        assert_eq!(ranges[0].0, 0);
        assert_eq!(ranges[2].1, SPACE);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].1, u128::from(pair[1].0));
        }
        let sizes: Vec<u128> = ranges.iter().map(|(s, e)| e - u128::from(*s)).collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
    }

    #[test]
    fn bad_counts_and_indexes_are_refused() {
        assert_eq!(Shard::new(0, 0), Err(ShardError::NoReplicas));
        assert_eq!(Shard::new(4, 4), Err(ShardError::OutOfRange { index: 4, count: 4 }));
    }

    #[test]
    fn the_environment_gives_the_count_and_the_index_or_the_statefulset_ordinal() {
        let shard = Shard::from_vars(vars(&[("KOPF_SHARD_COUNT", "4"), ("KOPF_SHARD_INDEX", "2")])).unwrap();
        assert_eq!((shard.index(), shard.count()), (2, 4));
        let shard =
            Shard::from_vars(vars(&[("KOPF_SHARD_COUNT", "4"), ("HOSTNAME", "my-operator-3")])).unwrap();
        assert_eq!(shard.index(), 3);
        let shard = Shard::from_vars(vars(&[
            ("KOPF_SHARD_COUNT", "4"),
            ("POD_NAME", "my-operator-1"),
            ("HOSTNAME", "my-operator-3"),
        ]))
        .unwrap();
        assert_eq!(shard.index(), 1, "POD_NAME before HOSTNAME");
        assert_eq!(
            Shard::from_vars(vars(&[("HOSTNAME", "op-1")])),
            Err(ShardError::Unset("KOPF_SHARD_COUNT"))
        );
        assert_eq!(
            Shard::from_vars(vars(&[("KOPF_SHARD_COUNT", "4"), ("HOSTNAME", "laptop")])),
            Err(ShardError::NoIndex)
        );
        assert_eq!(
            Shard::from_vars(vars(&[("KOPF_SHARD_COUNT", "four"), ("HOSTNAME", "op-1")])),
            Err(ShardError::NotANumber { name: "KOPF_SHARD_COUNT", value: "four".into() })
        );
        assert_eq!(
            Shard::from_vars(vars(&[("KOPF_SHARD_COUNT", "2"), ("HOSTNAME", "op-5")])),
            Err(ShardError::OutOfRange { index: 5, count: 2 })
        );
    }

    #[test]
    fn the_hash_is_fnv1a_64() {
        assert_eq!(shard_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(shard_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(shard_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    fn uid() -> impl Strategy<Value = String> {
        "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    }

    proptest! {
        /// The replicas' selectors, as the fake API server parses and matches them, select every
        /// uid exactly once, for any replica count.
        #[test]
        fn for_any_replica_count_every_uid_is_in_exactly_one_replicas_selector(
            count in prop_oneof![1u64..=64, any::<u64>().prop_map(|n| n.max(1))],
            uids in prop::collection::vec(uid(), 1..20),
            probe in any::<u64>(),
        ) {
            // Any replica count: all selectors for small counts, a few around the probe for huge ones.
            let indexes: Vec<u64> = if count <= 64 {
                (0..count).collect()
            } else {
                let i = u64::try_from(u128::from(probe) * u128::from(count) / SPACE).unwrap();
                (i.saturating_sub(1)..=(i + 1).min(count - 1)).collect()
            };
            let selectors: Vec<fake_apiserver::ShardSelector> = indexes
                .iter()
                .map(|i| fake_apiserver::ShardSelector::parse(&Shard::new(*i, count).unwrap().selector()).unwrap())
                .collect();
            if count <= 64 {
                for uid in &uids {
                    let owners = selectors.iter().filter(|s| s.matches(uid, "default")).count();
                    prop_assert_eq!(owners, 1, "uid {} with {} replicas", uid, count);
                    let ours = (0..count).filter(|i| Shard::new(*i, count).unwrap().owns(uid)).count();
                    prop_assert_eq!(ours, 1);
                }
            }
            // Neighbouring ranges meet exactly: a probe hash is in one of them, never two.
            let holding = selectors.iter().filter(|s| s.contains(probe)).count();
            prop_assert_eq!(holding, 1, "hash {:#x} with {} replicas", probe, count);
        }
    }
}
